// Building the page from data. Every text that comes from a customer, an
// agent or a file is set as text (textContent, attribute values), never
// parsed as HTML: a message saying <img src=x onerror=…> shows those
// characters.

/** An element with attributes (strings only) and children (nodes or text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const MARKS = { "*": "strong", _: "em", "~": "s", "`": "code" };

/** WhatsApp's *bold*, _italic_, ~strike~ and `mono` as elements; the rest as text. */
export function formatted(text) {
  const out = [];
  const re = /([*_~`])([^*_~`\n]+?)\1/g;
  let last = 0;
  for (const m of String(text ?? "").matchAll(re)) {
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    out.push(h(MARKS[m[1]], {}, m[2]));
    last = m.index + m[0].length;
  }
  if (last < String(text ?? "").length) out.push(document.createTextNode(String(text).slice(last)));
  return out;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString("en-IN", { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" });
}

/** "m:ss" since `iso`. */
export function since(iso, now = Date.now()) {
  const secs = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1000));
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`;
}

const TICKS = {
  queued: "🕓", unconfirmed: "🕓", accepted: "✓", sent: "✓", delivered: "✓✓", read: "✓✓ read", failed: "⚠ failed",
};

/**
 * One message. `media(id)` returns a promise of a blob URL for a media id;
 * `resend(message)` is offered on failed sends (admins).
 */
export function message(m, { media, resend, byId }) {
  const c = m.content || {};
  const side = m.kind === "note" ? "note" : m.type === "System" && m.direction !== "outbound" ? "system"
    : m.direction === "outbound" ? "out" : "in";
  const body = [];
  const quoted = m.reply_to_message_id && byId(m.reply_to_message_id);
  if (quoted) body.push(h("div", { class: "quote" }, quoted.preview || quoted.message || ""));
  switch (c.type) {
    case "text":
      body.push(...formatted(c.body));
      break;
    case "note":
      body.push(h("strong", {}, "📝 Note: "), ...formatted(c.body));
      break;
    case "sent":
      body.push(...formatted(m.message || m.preview || ""));
      break;
    case "media": {
      const label = c.filename || c.media_type || "file";
      if (c.media_type === "image" || c.media_type === "sticker") {
        const img = h("img", { alt: c.caption || "image" });
        media(c.media_id).then((url) => { img.src = url; }).catch(() => { img.alt = "image unavailable"; });
        body.push(img);
      } else {
        body.push(h("button", {
          type: "button",
          onclick: () => media(c.media_id).then((url) => {
            const a = h("a", { href: url, download: label });
            a.click();
          }),
        }, `⬇ ${label}`));
      }
      if (c.caption) body.push(h("div", {}, ...formatted(c.caption)));
      break;
    }
    case "location": {
      const lat = Number(c.latitude), lng = Number(c.longitude);
      const where = [c.name, c.address].filter(Boolean).join(", ");
      body.push("📍 ", where, " ");
      if (Number.isFinite(lat) && Number.isFinite(lng)) {
        body.push(h("a", { href: `https://www.google.com/maps?q=${lat},${lng}`, target: "_blank", rel: "noopener noreferrer" },
          `${lat.toFixed(5)}, ${lng.toFixed(5)}`));
      }
      break;
    }
    case "contacts":
      body.push("👤 ", (c.names || []).join(", "));
      break;
    case "interactive_reply":
    case "button":
      body.push("↩ ", c.title || c.text || "");
      break;
    case "reaction":
      body.push(c.emoji ? `reacted ${c.emoji}` : "removed a reaction");
      break;
    case "flow_reply":
      body.push("📝 ", c.body || "form answered");
      break;
    case "order":
      body.push("🛒 ", `${(c.items || []).length} item(s)`, c.text ? ` — ${c.text}` : "");
      break;
    default:
      body.push(m.message || m.preview || `(${m.kind})`);
  }
  const meta = [time(m.received_at)];
  if (m.direction === "outbound" && m.type !== "Customer") meta.push(` · ${m.sender}`);
  const status = m.delivery_status;
  const ticks = status ? h("span", { class: `ticks ${status}`, title: (m.delivery_errors || []).join("; ") || status }, ` ${TICKS[status] || status}`) : null;
  const failedNote = status === "failed" && (m.delivery_errors || []).length
    ? h("div", { class: "error" }, m.delivery_errors.join("; ")) : null;
  const retry = status === "failed" && resend ? h("button", { type: "button", onclick: () => resend(m) }, "Resend") : null;
  return h("div", { class: `msg ${side}`, "data-id": m.message_id },
    body, failedNote, retry, h("span", { class: "when" }, meta, ticks));
}
