// The dashboard's connection to Smart Chat: the REST routes (same origin)
// and the WebSocket API (docs/protocol.md), with reconnection.
//
// The token lives in sessionStorage: it survives a reload of the tab, is
// not shared with other tabs or kept after the browser closes, and is never
// put in a URL other than the WebSocket handshake (which requires it).

const TOKEN_KEY = "smartchat.token";
const REQUEST_TIMEOUT_MS = 15000;
// API Gateway closes a socket idle for 10 minutes: speak before that.
const KEEPALIVE_MS = 8 * 60 * 1000;

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class Unauthorized extends Error {}

export async function login(email, password) {
  const res = await fetch("/api/auth/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.token) {
    const message = body?.error?.message || body?.message || `login failed (${res.status})`;
    throw new Error(message);
  }
  sessionStorage.setItem(TOKEN_KEY, body.token);
  return body;
}

/** A REST call with the token; an expired or revoked token throws Unauthorized. */
export async function rest(path, options = {}) {
  const headers = { ...(options.headers || {}), authorization: `Bearer ${token()}` };
  const res = await fetch(path, { ...options, headers });
  if (res.status === 401) throw new Unauthorized("session ended");
  return res;
}

export async function config() {
  const res = await fetch("/config.json", { cache: "no-store" });
  return res.json();
}

/**
 * The dashboard socket: requests answered by request id, pushes handed to
 * `onPush(event, data)`. Reconnects by itself with backoff; `onState`
 * hears "online" / "offline"; `onUnauthorized` when the session is over.
 */
export class Socket {
  constructor(url, { onPush, onState, onUnauthorized, onOpen }) {
    this.url = url;
    this.onPush = onPush;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.onOpen = onOpen;
    this.pending = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.closed = false;
    this.lastSent = Date.now();
    this.keepalive = setInterval(() => this.keepAlive(), 60 * 1000);
    this.connect();
  }

  connect() {
    const ws = new WebSocket(`${this.url}?token=${encodeURIComponent(token() || "")}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.onState("online");
      this.onOpen();
    };
    ws.onmessage = (m) => this.received(m.data);
    ws.onclose = async () => {
      for (const [, p] of this.pending) p.reject(new Error("connection lost"));
      this.pending.clear();
      if (this.closed) return;
      this.onState("offline");
      // A refused handshake may be an expired session: ask the API.
      if (!opened) {
        try {
          await rest("/api/dashboard/stats");
        } catch (e) {
          if (e instanceof Unauthorized) {
            this.close();
            this.onUnauthorized();
            return;
          }
        }
      }
      const wait = Math.min(30000, 500 * 2 ** this.attempt) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      setTimeout(() => this.closed || this.connect(), wait);
    };
  }

  received(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const waiting = frame.request_id && this.pending.get(frame.request_id);
    if (waiting) {
      this.pending.delete(frame.request_id);
      if (frame.event === "error") {
        if (frame.data?.code === "unauthorized") {
          this.close();
          this.onUnauthorized();
        }
        waiting.reject(Object.assign(new Error(frame.data?.message || "error"), frame.data || {}));
      } else {
        waiting.resolve(frame.data);
      }
      return;
    }
    if (frame.event === "error" && frame.data?.code === "unauthorized") {
      this.close();
      this.onUnauthorized();
      return;
    }
    this.onPush(frame.event, frame.data || {});
  }

  /** Sends a request; resolves with the reply's data, rejects with an error frame. */
  request(event, data = {}) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error("offline"));
        return;
      }
      const id = `r${this.nextId++}`;
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new Error("no answer"));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (d) => { clearTimeout(timer); resolve(d); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.lastSent = Date.now();
      this.ws.send(JSON.stringify({ event, data, request_id: id }));
    });
  }

  keepAlive() {
    if (Date.now() - this.lastSent > KEEPALIVE_MS && this.ws?.readyState === WebSocket.OPEN) {
      this.request("config").catch(() => {});
    }
  }

  close() {
    this.closed = true;
    clearInterval(this.keepalive);
    this.ws?.close();
  }
}
