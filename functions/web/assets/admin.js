// Admin pages: the team (executives, who is online), tags, the discount
// bot (routes, decline log, statistics), the message log and send
// statistics, and the service statistics. Every value shown is text.

import { rest } from "./api.js";
import { h, time } from "./render.js";

const TEAMS = ["Partner", "Customer", "Vendor", "SRDP"];

async function get(path) {
  const res = await rest(path);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message || `${path}: ${res.status}`);
  return body.data ?? body;
}

async function send(method, path, data) {
  const res = await rest(path, {
    method,
    headers: { "content-type": "application/json" },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const fields = body?.error?.fields ? ` (${Object.entries(body.error.fields).map(([k, v]) => `${k}: ${v}`).join("; ")})` : "";
    throw new Error((body?.error?.message || `${res.status}`) + fields);
  }
  return body.data ?? body;
}

/** A table of `rows` with `columns` ([title, row → text or node]). */
function table(columns, rows) {
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map(([t]) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, f]) => h("td", {}, f(r)))))));
}

function today(offsetDays = 0) {
  const d = new Date(Date.now() + offsetDays * 86400000);
  return d.toISOString().slice(0, 10);
}

function periodForm(onChange) {
  const from = h("input", { type: "date", value: today(-7), "aria-label": "From" });
  const to = h("input", { type: "date", value: today(), "aria-label": "To" });
  const go = h("button", { type: "submit" }, "Show");
  const form = h("form", { class: "period" }, "From ", from, " to ", to, " ", go);
  form.addEventListener("submit", (e) => { e.preventDefault(); onChange(from.value, to.value); });
  return { form, from, to };
}

function failure(box, e) {
  box.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
}

async function team(box) {
  const list = await get("/api/executives");
  const rows = table([
    ["Name", (x) => x.name],
    ["Id", (x) => x.executive_id],
    ["E-mail", (x) => x.email],
    ["Role", (x) => x.role],
    ["Teams", (x) => (x.stakeholders || []).join(", ")],
    ["Capacity", (x) => String(x.capacity)],
    ["Status", (x) => (x.disabled ? "disabled" : x.online ? `online · ${x.open_chats} open` : "offline")],
    ["", (x) => (x.disabled ? "" : h("button", { type: "button", "data-edit": x.executive_id, onclick: () => edit(box, x) }, "Edit"))],
    ["", (x) => (x.disabled ? "" : h("button", {
      type: "button",
      onclick: async () => {
        if (!confirm(`Disable ${x.name}? Their chats go to others.`)) return;
        try { await send("DELETE", `/api/executives/${encodeURIComponent(x.executive_id)}`); await team(box); } catch (e) { alert(e.message); }
      },
    }, "Disable"))],
  ], list);
  const name = h("input", { placeholder: "Name", required: true, "aria-label": "Name" });
  const email = h("input", { type: "email", placeholder: "E-mail", required: true, "aria-label": "E-mail" });
  const password = h("input", { type: "password", placeholder: "Password (10+)", required: true, minlength: 10, "aria-label": "Password" });
  const role = h("select", { "aria-label": "Role" }, h("option", { value: "agent" }, "agent"), h("option", { value: "admin" }, "admin"));
  const capacity = h("input", { type: "number", min: 1, max: 200, value: 10, "aria-label": "Capacity" });
  const teams = TEAMS.map((t) => h("label", {}, h("input", { type: "checkbox", value: t }), ` ${t}`));
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "row" }, name, email, password, role, capacity, teams, h("button", { type: "submit" }, "Add executive"), error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await send("POST", "/api/executives", {
        name: name.value, email: email.value, password: password.value, role: role.value,
        capacity: Number(capacity.value),
        stakeholders: teams.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value),
      });
      await team(box);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  box.replaceChildren(h("h3", {}, "Executives"), rows, h("h3", {}, "Add an executive"), form);
}

/** Changes an executive's role, teams and capacity (PATCH: only these). */
function edit(box, x) {
  box.querySelector(".edit")?.remove();
  const role = h("select", { "aria-label": "Role" }, ["agent", "admin"].map((r) => h("option", { value: r, selected: r === x.role }, r)));
  const capacity = h("input", { type: "number", min: 1, max: 200, value: x.capacity, "aria-label": "Capacity" });
  const teams = TEAMS.map((t) => h("label", {}, h("input", { type: "checkbox", value: t, checked: (x.stakeholders || []).includes(t) }), ` ${t}`));
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "row edit" }, h("strong", {}, `${x.name}: `), role, capacity, teams, h("button", { type: "submit" }, "Save"), error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await send("PATCH", `/api/executives/${encodeURIComponent(x.executive_id)}`, {
        role: role.value,
        capacity: Number(capacity.value),
        stakeholders: teams.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value),
      });
      await team(box);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  box.querySelector("table").after(form);
}

async function tags(box) {
  const all = await get("/api/tags");
  const sections = Object.entries(all).map(([teamName, names]) => h("section", {},
    h("h3", {}, teamName),
    h("ul", { class: "chips" }, names.map((n) => h("li", {}, n, " ", h("button", {
      type: "button",
      "aria-label": `Remove ${n}`,
      onclick: async () => {
        try { await send("DELETE", `/api/tags/${encodeURIComponent(teamName)}/${encodeURIComponent(n)}`); await tags(box); } catch (e) { alert(e.message); }
      },
    }, "×"))))));
  const team = h("select", { "aria-label": "Team" }, TEAMS.map((t) => h("option", { value: t }, t)));
  const name = h("input", { placeholder: "New tag", required: true, "aria-label": "Tag name" });
  const form = h("form", { class: "row" }, team, name, h("button", { type: "submit" }, "Add tag"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await send("POST", "/api/tags", { customer_type: team.value, name: name.value }); await tags(box); } catch (err) { alert(err.message); }
  });
  box.replaceChildren(...sections, form);
}

async function discount(box) {
  const routes = await get("/api/discount/routes");
  const out = h("div");
  const show = async (from, to) => {
    try {
      const [stats, declines] = await Promise.all([
        get(`/api/discount/stats?from=${from}&to=${to}`),
        get(`/api/discount/declines?from=${from}&to=${to}`),
      ]);
      const t = stats.totals;
      out.replaceChildren(
        h("p", {}, `Offers ${t.offers} · codes ${t.codes} · declines ${t.declines} (bad service ${t.reasons.bad_service}, prices high ${t.reasons.prices_high}, other ${t.reasons.other}) · care ${t.care} · not text ${t.not_text}`),
        table([["Route", ([r]) => r], ["Offers", ([, v]) => String(v.offers)], ["Codes", ([, v]) => String(v.codes)],
          ["Declines", ([, v]) => String(v.declines)], ["Reasons", ([, v]) => Object.entries(v.reasons).map(([k, n]) => `${k} ${n}`).join(", ")]],
        Object.entries(t.routes)),
        h("h3", {}, "Decline log"),
        table([["When", (d) => time(d.at)], ["Customer", (d) => d.customer], ["Route", (d) => d.route], ["Reason", (d) => d.reason]], declines.declines),
      );
    } catch (e) { failure(out, e); }
  };
  const period = periodForm(show);
  box.replaceChildren(
    h("h3", {}, "Routes"),
    table([
      ["Route", (r) => r.name], ["Price", (r) => `₹${r.route.price}`], ["Code", (r) => r.route.code],
      ["Offered", (r) => (r.offered ? "yes" : r.route.placeholder ? "placeholder" : "disabled")],
    ], routes.routes),
    h("h3", {}, "Statistics"), period.form, out,
  );
  await show(period.from.value, period.to.value);
}

async function messages(box) {
  const out = h("div");
  const show = async (from, to) => {
    try {
      const [log, stats] = await Promise.all([
        get(`/api/messages?from=${from}&to=${to}&limit=50`),
        get(`/api/messages/stats?from=${from}&to=${to}`),
      ]);
      out.replaceChildren(
        h("pre", { class: "stats" }, JSON.stringify(stats.total ?? stats, null, 2)),
        table([["Queued", (m) => time(m.queued_at || m.received_at)], ["To", (m) => m.customer || m.to || ""], ["Kind", (m) => m.kind || ""],
          ["State", (m) => m.delivery_status || m.state || ""], ["By", (m) => m.sender || ""], ["Preview", (m) => m.preview || ""]],
        log.messages || log.entries || []),
      );
    } catch (e) { failure(out, e); }
  };
  const period = periodForm(show);
  box.replaceChildren(period.form, out);
  await show(period.from.value, period.to.value);
}

async function service(box) {
  const out = h("div");
  const show = async (from, to) => {
    try {
      const s = await get(`/api/stats/service?from=${from}&to=${to}`);
      const teams = Object.entries(s.teams || {});
      out.replaceChildren(table([
        ["Team", ([t]) => t], ["First responses", ([, v]) => String(v.first_responses ?? 0)],
        ["Avg first (s)", ([, v]) => String(Math.round(v.avg_first_response_secs ?? 0))],
        ["Next responses", ([, v]) => String(v.next_responses ?? 0)],
        ["Avg next (s)", ([, v]) => String(Math.round(v.avg_next_response_secs ?? 0))],
        ["Resolved", ([, v]) => String(v.resolutions ?? v.resolved ?? 0)],
        ["SLA alerts", ([, v]) => String(v.sla_alerts ?? 0)],
        ["Ratings", ([, v]) => `${v.ratings ?? 0} (avg ${v.avg_rating ?? "–"})`],
      ], teams));
    } catch (e) { failure(out, e); }
  };
  const period = periodForm(show);
  box.replaceChildren(period.form, out);
  await show(period.from.value, period.to.value);
}

const PAGES = { Team: team, Tags: tags, Discount: discount, Messages: messages, Service: service };

/** The admin pages in `pane`, starting with the team. */
export async function openAdmin(pane) {
  const box = h("div", { class: "admin-body" });
  const tabs = Object.entries(PAGES).map(([name, show]) => h("button", {
    type: "button",
    role: "tab",
    "data-page": name,
    onclick: async () => {
      box.replaceChildren(h("p", { class: "muted" }, "Loading…"));
      try { await show(box); } catch (e) { failure(box, e); }
    },
  }, name));
  pane.replaceChildren(h("div", { class: "admin" }, h("nav", { class: "tabs", role: "tablist" }, tabs), box));
  tabs[0].click();
}
