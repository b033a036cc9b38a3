// The agents' dashboard: log in, the chat list (live), a conversation and
// its composer. Plain ES modules, no build step.

import { Socket, Unauthorized, config, forget, login, rest, token } from "./api.js";
import { openAdmin } from "./admin.js";
import { h, message, since, time } from "./render.js";

const $ = (id) => document.getElementById(id);
const TEXT_LIMIT = 4096;
const WINDOW_MS = 24 * 3600 * 1000;
const ROOM_EVENTS = ["room_update", "room_update_customer", "room_update_vendor", "room_update_srdp"];

const state = {
  socket: null,
  me: null,
  chats: new Map(), // chat_id → chat view
  order: [], // chat ids as listed
  cursor: null,
  loading: false,
  current: null, // chat_id open
  messages: [], // of the open chat, oldest first
  before: null, // older page of the open chat
  mediaUrls: new Map(),
  templates: [],
  texts: {}, // predefined texts by key
  tags: {}, // team → tag names
  executives: null, // admins: for assigning
  alerts: new Set(),
};

function showLogin(reason) {
  state.socket?.close();
  state.socket = null;
  forget();
  $("app").hidden = true;
  $("offline").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
  $("email").focus();
}

async function start() {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    try {
      const who = await login($("email").value.trim(), $("password").value);
      state.me = who.executive;
      await open();
    } catch (err) {
      $("login-error").textContent = err.message;
    }
  });
  $("logout").addEventListener("click", () => showLogin(""));
  $("admin-open").addEventListener("click", () => {
    state.current = null;
    drawList();
    openAdmin($("chat"));
  });
  $("online").addEventListener("change", toggleOnline);
  for (const id of ["f-status", "f-team", "f-profile", "f-assigned"]) $(id).addEventListener("change", reload);
  let typing;
  for (const id of ["f-tag", "f-search"]) {
    $(id).addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(reload, 300); });
  }
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
  $("chats").addEventListener("scroll", () => {
    const list = $("chats");
    if (list.scrollTop + list.clientHeight > list.scrollHeight - 80) loadMore();
  });
  setInterval(tickCountdowns, 1000);
  if (token()) await open();
  else showLogin("");
}

async function open() {
  const cfg = await config();
  $("login").hidden = true;
  $("app").hidden = false;
  state.socket = new Socket(cfg.ws_url, {
    onPush: pushed,
    onState: (s) => { $("offline").hidden = s === "online"; },
    onUnauthorized: () => showLogin("Your session ended. Please log in again."),
    onOpen: () => {
      // How many times the socket opened (a reconnection shows here).
      document.body.dataset.connects = String(Number(document.body.dataset.connects || 0) + 1);
      refetch();
    },
  });
}

/** After (re)connecting: who I am, then the list and the open chat again. */
async function refetch() {
  try {
    const cfg = await state.socket.request("config");
    state.me = { ...(state.me || {}), executive_id: cfg.executive_id, role: cfg.role, stakeholders: cfg.stakeholders };
    state.templates = cfg.templates || [];
    state.tags = cfg.tags || {};
    state.texts = cfg.texts || {};
    $("me").textContent = `${cfg.executive_id} (${cfg.role})`;
    $("admin-open").hidden = cfg.role !== "admin";
    const team = $("f-team");
    if (team.options.length === 1) {
      for (const s of cfg.stakeholders) team.append(h("option", { value: s }, s));
    }
    await stats();
    await reload();
    if (state.current) await openChat(state.current);
  } catch (e) {
    if (e instanceof Unauthorized) showLogin("Your session ended. Please log in again.");
  }
}

async function stats() {
  try {
    const res = await rest("/api/dashboard/stats");
    const body = await res.json();
    showStats(body.data || body);
  } catch (e) {
    if (e instanceof Unauthorized) showLogin("Your session ended. Please log in again.");
  }
}

/** The counters: in all, then each team the caller serves. */
function showStats(s) {
  const served = state.me?.stakeholders || [];
  const teams = served.map((t) => {
    const c = s.teams?.[t] || {};
    return h("span", { class: "team", "data-team": t, title: `${t}: active / pending / resolved` },
      `${t} ${c.active ?? 0} · ${c.pending ?? 0} · ${c.resolved ?? 0}`);
  });
  $("teams").replaceChildren(
    h("span", { class: "team" }, `Active ${s.active ?? 0}`),
    h("span", { class: "team" }, `Pending ${s.pending ?? 0}`),
    h("span", { class: "team" }, `Resolved ${s.resolved ?? 0}`),
    ...teams,
  );
}

async function toggleOnline() {
  const box = $("online");
  // Going online is the moment to ask for SLA alerts as notifications.
  if (box.checked && "Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
  try {
    await state.socket.request("set_status", { status: box.checked ? "online" : "offline" });
    $("online-label").textContent = box.checked ? "Online" : "Offline";
  } catch (e) {
    box.checked = !box.checked;
    alert(e.message);
  }
}

function query() {
  const q = { status: $("f-status").value, page_size: 20 };
  const add = (k, v) => { if (v) q[k] = v; };
  add("customer_type", $("f-team").value);
  add("filter", $("f-profile").value);
  add("assigned_to", $("f-assigned").value);
  add("tag", $("f-tag").value.trim());
  add("search", $("f-search").value.trim());
  return q;
}

async function reload() {
  state.chats.clear();
  state.order = [];
  state.cursor = null;
  $("chats").replaceChildren();
  await loadMore(true);
}

async function loadMore(first = false) {
  if (state.loading || (!first && !state.cursor)) return;
  state.loading = true;
  try {
    const page = await state.socket.request("fetch_all_chats", first ? query() : { cursor: state.cursor });
    for (const c of page.chats) {
      state.chats.set(c.chat_id, c);
      if (!state.order.includes(c.chat_id)) state.order.push(c.chat_id);
    }
    state.cursor = page.has_more ? page.next_cursor : null;
    drawList();
  } catch (e) {
    $("list-end").textContent = e.message;
  } finally {
    state.loading = false;
  }
}

function drawList() {
  const items = state.order.map((id) => state.chats.get(id)).filter(Boolean).map(chatItem);
  $("chats").replaceChildren(...items);
  $("list-end").textContent = state.cursor ? "" : `${state.order.length} chat(s)`;
}

function chatItem(c) {
  const waiting = c.awaiting_reply && c.wait_started_at;
  const li = h("li", {
    role: "option",
    tabindex: "0",
    "data-chat": c.chat_id,
    class: [c.chat_id === state.current ? "current" : "", state.alerts.has(c.chat_id) ? "alert" : ""].join(" "),
    onclick: () => openChat(c.chat_id),
    onkeydown: (e) => { if (e.key === "Enter") openChat(c.chat_id); },
  },
  h("span", { class: "name" }, c.customer_name || c.customer),
  c.unseen_count ? h("span", { class: "badge", title: "unseen" }, c.unseen_count) : h("span"),
  h("span", { class: "preview" }, c.last_message || ""),
  h("span", { class: "meta" },
    h("span", {}, c.customer_type),
    h("span", {}, c.assigned_to ? `→ ${c.assigned_to}` : "unassigned"),
    waiting ? h("span", { class: "sla", "data-since": c.wait_started_at }, `⏱ ${since(c.wait_started_at)}`) : null,
    c.next_ride ? h("span", { title: c.next_ride.booking_id }, `🚖 ${c.next_ride.ride_status} ${c.next_ride.ride_datetime_ist}`) : null,
    (c.tags || []).map((t) => h("span", { class: "tag" }, t)),
    h("span", {}, time(c.last_message_time))));
  return li;
}

function tickCountdowns() {
  for (const el of document.querySelectorAll(".sla[data-since]")) {
    el.textContent = `⏱ ${since(el.dataset.since)}`;
  }
}

/** A chat changed: update it in place and move it to the top of the list. */
function upsertChat(c) {
  if (!c?.chat_id) return;
  const listed = state.chats.get(c.chat_id);
  const status = $("f-status").value;
  if (c.status !== status) {
    state.chats.delete(c.chat_id);
    state.order = state.order.filter((id) => id !== c.chat_id);
  } else {
    state.chats.set(c.chat_id, { ...listed, ...c, next_ride: c.next_ride ?? listed?.next_ride });
    state.order = [c.chat_id, ...state.order.filter((id) => id !== c.chat_id)];
  }
  drawList();
  if (c.chat_id === state.current) drawHead(state.chats.get(c.chat_id) || c);
}

function pushed(event, data) {
  if (ROOM_EVENTS.includes(event)) upsertChat(data.chat || data);
  else if (event === "new_message" && data.chat_id === state.current) {
    addMessages([data.message]);
    state.socket.request("mark_seen", { chat_id: state.current }).catch(() => {});
  } else if (event === "message_status" && data.chat_id === state.current) {
    const m = state.messages.find((x) => x.message_id === data.message_id);
    if (m) {
      m.delivery_status = data.status;
      m.delivery_errors = data.errors;
      drawMessages(false);
    }
  } else if (event === "dashboard_stats") showStats(data);
  else if (event === "tag_updated") retag(data.chat_id, data.tags);
  else if (["chat_status_updated", "chat_assigned", "chat_reassigned", "chat_rated"].includes(event)) {
    if (data.chat) upsertChat(data.chat);
  } else if (event === "sla_alert") {
    state.alerts.add(data.chat_id);
    drawList();
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(`Waiting ${Math.round(data.waited_secs / 60)} min`, { body: data.customer_name || data.customer });
    }
  }
}

async function openChat(id) {
  state.current = id;
  state.alerts.delete(id);
  drawList();
  const pane = $("chat");
  pane.replaceChildren(h("p", { class: "muted empty" }, "Loading…"));
  try {
    await state.socket.request("join_chat", { chat_id: id });
    const page = await state.socket.request("fetch_chats_by_user", { chat_id: id, page_size: 30 });
    state.messages = [...page.messages].reverse();
    state.before = page.has_more ? page.next_before : null;
    const chat = { ...state.chats.get(id), ...page.chat };
    state.chats.set(id, { ...chat, unseen_count: 0 });
    drawList();
    drawChat(chat);
  } catch (e) {
    pane.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

function drawHead(chat) {
  const head = $("chat").querySelector(".chat-head");
  if (!head) return;
  const resolved = chat.status === "resolved";
  const staffed = chat.customer_type !== "Discount";
  const tagNames = state.tags[chat.customer_type] || [];
  const addTag = h("select", { "aria-label": "Add a tag" }, h("option", { value: "" }, "+ tag"),
    tagNames.filter((t) => !(chat.tags || []).includes(t)).map((t) => h("option", { value: t }, t)));
  addTag.addEventListener("change", () => tagChat(chat.chat_id, addTag.value, true));
  head.replaceChildren(...[
    h("h2", {}, chat.customer_name || chat.customer),
    h("span", { class: "muted" }, `${chat.customer} · ${chat.customer_type} · ${chat.assigned_to ? `→ ${chat.assigned_to}` : "unassigned"}`),
    chat.rating ? h("span", { title: "the customer's rating" }, `★ ${chat.rating}`) : null,
    (chat.tags || []).map((t) => h("span", { class: "tag" }, t, " ",
      t === "Awaiting Customer Response" ? null : h("button", { type: "button", class: "link", "aria-label": `Remove tag ${t}`, onclick: () => tagChat(chat.chat_id, t, false) }, "×"))),
    staffed && tagNames.length ? addTag : null,
    h("span", { class: "spacer" }),
    state.me?.role === "admin" && staffed && !resolved ? assignPicker(chat) : null,
    h("button", { type: "button", onclick: () => showHistory(chat) }, "History"),
    staffed ? h("button", { type: "button", onclick: () => setChatStatus(chat.chat_id, resolved ? "active" : "resolved") }, resolved ? "Reopen" : "Resolve") : null,
  ].flat().filter(Boolean));
}

function assignPicker(chat) {
  const pick = h("select", { "aria-label": "Assign to" }, h("option", { value: "" }, "Assign…"));
  const fill = (list) => {
    for (const x of list.filter((e) => !e.disabled && (e.role === "admin" || (e.stakeholders || []).includes(chat.customer_type)))) {
      pick.append(h("option", { value: x.executive_id }, `${x.name}${x.online ? " ●" : ""}`));
    }
  };
  if (state.executives) fill(state.executives);
  else {
    rest("/api/executives").then((r) => r.json()).then((b) => { state.executives = b.data || []; fill(state.executives); }).catch(() => {});
  }
  pick.addEventListener("change", async () => {
    if (!pick.value) return;
    try {
      const r = await state.socket.request("assign_chat", { chat_id: chat.chat_id, executive_id: pick.value });
      if (r.chat) upsertChat(r.chat);
    } catch (e) {
      alert(e.message);
    }
  });
  return pick;
}

async function tagChat(chatId, tag, applied) {
  if (!tag) return;
  try {
    const r = await state.socket.request(applied ? "apply_tag" : "remove_tag", { chat_id: chatId, tag });
    retag(chatId, r.tags);
  } catch (e) {
    alert(e.message);
  }
}

/** A chat's tags changed. */
function retag(chatId, tags) {
  const listed = state.chats.get(chatId);
  if (!listed || !Array.isArray(tags)) return;
  state.chats.set(chatId, { ...listed, tags });
  drawList();
  if (chatId === state.current) drawHead(state.chats.get(chatId));
}

async function showHistory(chat) {
  try {
    const r = await state.socket.request("fetch_context_history", { customer: chat.customer });
    const rows = (r.chats || []).map((c) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => openChat(c.chat_id) }, `${time(c.created_at)} · ${c.customer_type} · ${c.status}`),
      c.context ? h("div", { class: "muted" }, Object.entries(c.context).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`).join(" · ")) : null));
    const panel = h("aside", { class: "history", "aria-label": "Context history" },
      h("h3", {}, "Conversations and their context"),
      h("button", { type: "button", onclick: () => panel.remove() }, "Close"),
      h("ul", {}, rows));
    $("chat").querySelector(".history")?.remove();
    $("chat").insertBefore(panel, $("messages"));
  } catch (e) {
    alert(e.message);
  }
}

function drawChat(chat) {
  const list = h("div", { class: "messages", id: "messages" });
  list.addEventListener("scroll", () => { if (list.scrollTop < 40) loadOlder(); });
  $("chat").replaceChildren(h("div", { class: "chat-head" }), list, composer(chat));
  drawHead(chat);
  drawMessages(true);
}

function drawMessages(toBottom) {
  const list = $("messages");
  if (!list) return;
  const byId = (id) => state.messages.find((m) => m.message_id === id);
  const admin = state.me?.role === "admin";
  list.replaceChildren(...state.messages.map((m) => message(m, { media, byId, resend: admin ? resend : null })));
  if (toBottom) list.scrollTop = list.scrollHeight;
}

function addMessages(ms) {
  for (const m of ms) {
    if (!state.messages.some((x) => x.message_id === m.message_id)) state.messages.push(m);
  }
  state.messages.sort((a, b) => (a.message_id < b.message_id ? -1 : 1));
  drawMessages(true);
}

async function loadOlder() {
  if (!state.before || state.loadingOlder) return;
  state.loadingOlder = true;
  try {
    const page = await state.socket.request("fetch_chats_by_user", { chat_id: state.current, before: state.before, page_size: 30 });
    const list = $("messages");
    const height = list.scrollHeight;
    state.messages = [...[...page.messages].reverse(), ...state.messages];
    state.before = page.has_more ? page.next_before : null;
    drawMessages(false);
    list.scrollTop = list.scrollHeight - height;
  } finally {
    state.loadingOlder = false;
  }
}

/** A fresh id for one composed message (`send_message`'s `client_id`). */
function clientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/**
 * Sends what was composed under one client id until it is answered: sent
 * again after an answer that never came (the socket dropped, no answer in
 * time), it is stored and sent once. Something else composed takes a new id.
 */
function onceSender() {
  let composed = null;
  return async (data) => {
    const what = JSON.stringify(data);
    if (composed?.what !== what) composed = { what, id: clientId() };
    await state.socket.request("send_message", { ...data, client_id: composed.id });
    composed = null;
  };
}

function composer(chat) {
  const sendOnce = onceSender();
  const last = chat.last_incoming_message ? new Date(chat.last_incoming_message).getTime() : 0;
  const closed = Date.now() - last > WINDOW_MS;
  const text = h("textarea", { id: "compose", maxlength: TEXT_LIMIT, "aria-label": "Message", placeholder: closed ? "Window closed: send a template, or add a note" : "Type a reply or a note" });
  const count = h("span", { class: "hint muted" }, `0 / ${TEXT_LIMIT}`);
  const counted = () => { count.textContent = `${text.value.length} / ${TEXT_LIMIT}`; };
  text.addEventListener("input", counted);
  const cleared = () => { text.value = ""; counted(); };
  const send = h("button", { type: "submit", disabled: closed }, "Send");
  const note = h("button", {
    type: "button",
    id: "add-note",
    title: "Visible to teammates only; never sent to the customer",
    onclick: async () => {
      const body = text.value.trim();
      if (!body) return;
      try {
        await state.socket.request("add_note", { chat_id: chat.chat_id, note: body });
        cleared();
      } catch (err) {
        alert(err.message);
      }
    },
  }, "Add note");

  // Predefined texts go into the box, to be read and sent.
  const predefined = h("select", { "aria-label": "Predefined text" }, h("option", { value: "" }, "Predefined text…"),
    Object.keys(state.texts).map((k) => h("option", { value: k }, k)));
  predefined.addEventListener("change", () => {
    if (predefined.value) { text.value = state.texts[predefined.value]; counted(); text.focus(); }
    predefined.value = "";
  });

  // Approved templates, with a box for each of their values.
  const pick = h("select", { "aria-label": "Template" }, state.templates.map((t) => h("option", { value: t.name }, `${t.name}${t.description ? ` — ${t.description}` : ""}`)));
  const values = h("span", { class: "values" });
  const showValues = () => {
    const t = state.templates.find((x) => x.name === pick.value);
    values.replaceChildren(...Array.from({ length: t?.body_params || 0 }, (_, i) => h("input", { "aria-label": `Value ${i + 1}`, placeholder: `{{${i + 1}}}`, required: true })));
  };
  pick.addEventListener("change", showValues);
  showValues();
  const sendTemplate = h("button", {
    type: "button",
    onclick: async () => {
      const params = [...values.querySelectorAll("input")].map((i) => i.value);
      if (params.some((p) => !p.trim())) { alert("Fill in every value of the template."); return; }
      try {
        await sendOnce({ chat_id: chat.chat_id, type: "template", template: { name: pick.value, params } });
      } catch (e) {
        alert(e.message);
      }
    },
  }, "Send template");
  const tools = h("div", { class: closed ? "tools window-closed" : "tools" },
    closed ? h("span", {}, "The customer has not written in 24 hours: WhatsApp only allows a template. ") : null,
    closed ? null : predefined, " ", pick, values, sendTemplate);

  const form = h("form", { class: "composer" }, tools, text, h("span", { class: "actions" }, send, note), count);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = text.value.trim();
    if (!body || closed) return;
    send.disabled = true;
    try {
      await sendOnce({ chat_id: chat.chat_id, message: body });
      cleared();
    } catch (err) {
      alert(err.message);
    } finally {
      send.disabled = false;
      text.focus();
    }
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  return form;
}

async function setChatStatus(chatId, status) {
  try {
    const r = await state.socket.request("update_chat_status", { chat_id: chatId, status });
    if (r.chat) upsertChat(r.chat);
  } catch (e) {
    alert(e.message);
  }
}

async function resend(m) {
  const res = await rest(`/api/messages/${encodeURIComponent(m.chat_id)}/${encodeURIComponent(m.message_id)}/resend`, { method: "POST" });
  if (!res.ok) alert(`resend failed (${res.status})`);
}

async function media(id) {
  if (state.mediaUrls.has(id)) return state.mediaUrls.get(id);
  const chat = state.chats.get(state.current);
  const res = await rest(`/api/media/${encodeURIComponent(id)}?channel=${encodeURIComponent(chat?.channel || "")}`);
  if (!res.ok) throw new Error(`media ${res.status}`);
  const url = URL.createObjectURL(await res.blob());
  state.mediaUrls.set(id, url);
  return url;
}

start();
