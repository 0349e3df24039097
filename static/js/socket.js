// The one websocket to the game server (docs/protocol.md): joins with `hello`, matches replies to
// requests by `id`, reconnects with exponential backoff and jitter, and re-joins with the saved
// token so the page recovers without a reload. A submission or vote the server had not
// acknowledged when the connection dropped is sent again after the re-join, with the same `id`:
// the server stores each once and answers a resend with the original acknowledgement.

const PROTOCOL_VERSION = 2; // drawings sent incrementally (drawing-stream.js)
const TOKEN_KEY = "ftm.token";
const BACKOFF_FIRST_MS = 400;
const BACKOFF_MAX_MS = 8000;
const HEARTBEAT_MS = 20000;
const RESENT = new Set(["submit", "vote"]); // idempotent on their id: safe to send again

export class ServerError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export function savedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

export class GameSocket extends EventTarget {
  // `join` is {name} for a new player, {spectator: true} to watch; a saved token always wins
  // over a name, so a returning player keeps their identity.
  constructor(join, url = defaultUrl()) {
    super();
    this.join = join;
    this.url = url;
    this.ws = null;
    this.status = "offline"; // offline → connecting → online → reconnecting → online …
    this.welcome = null;
    this.attempt = 0;
    this.nextId = 1;
    // Ids unique across page loads too: the server remembers a submission's id for a day.
    this.page = Math.random().toString(36).slice(2, 10);
    this.pending = new Map(); // id → {resolve, reject, message (kept to resend)}
    this.stopped = false;
    this.heartbeat = null;
    this.awaitingPong = false;
  }

  connect() {
    this.stopped = false;
    this.setStatus(this.welcome ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => this.sendHello());
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", () => this.closed(ws));
  }

  // Stop for good (a ban, or the player leaving); no reconnects after this.
  stop() {
    this.stopped = true;
    this.ws?.close(1000);
  }

  // Fire-and-forget: for messages whose replies are handled as events (e.g. live predictions,
  // where the server drops stale requests without replying).
  send(message) {
    if (this.status !== "online") return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  // Resolves with the reply carrying the same `id`, rejects with a ServerError on `error`.
  request(message) {
    const sent = { ...message, id: message.id ?? this.newId("r") };
    return new Promise((resolve, reject) => {
      if (!this.send(sent)) {
        reject(new ServerError("offline", "Not connected to the game right now; reconnecting…"));
        return;
      }
      this.pending.set(sent.id, { resolve, reject, message: RESENT.has(sent.type) ? sent : null });
    });
  }

  newId(prefix) {
    return `${prefix}${this.nextId++}-${this.page}`;
  }

  sendHello() {
    const token = savedToken();
    let hello;
    if (this.join.spectator) hello = { spectator: true };
    else if (token) hello = { token };
    else hello = { name: this.join.name };
    this.ws.send(JSON.stringify({ type: "hello", v: PROTOCOL_VERSION, id: "hello", ...hello }));
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.emit("error", { code: "bad_reply", message: "The server sent something unreadable." });
      return;
    }
    if (message.type === "welcome") {
      this.welcomed(message);
    } else if (message.type === "pong") {
      this.awaitingPong = false;
    } else if (message.id === "hello" && message.type === "error") {
      this.helloRefused(message);
      return;
    }
    const waiter = message.id !== undefined ? this.pending.get(message.id) : undefined;
    if (waiter) {
      this.pending.delete(message.id);
      if (message.type === "error") waiter.reject(new ServerError(message.code, message.message));
      else waiter.resolve(message);
      return;
    }
    this.emit(message.type, message);
  }

  welcomed(message) {
    if (message.token) localStorage.setItem(TOKEN_KEY, message.token);
    const rejoined = this.welcome !== null;
    this.welcome = message;
    this.attempt = 0;
    this.setStatus("online");
    this.startHeartbeat();
    this.emit(rejoined ? "rejoined" : "joined", message);
    // What was sent but never acknowledged may or may not have been stored: ask again.
    for (const { message: unacknowledged } of this.pending.values()) {
      if (unacknowledged) this.send(unacknowledged);
    }
  }

  // A refused hello is final for this identity: the page must ask for a new name (or give up).
  helloRefused(message) {
    if (message.code === "unknown_token") forgetToken();
    this.welcome = null; // whoever joins next is new to this page: "joined", not "rejoined"
    this.stop();
    this.emit("refused", message);
  }

  closed(ws) {
    if (ws !== this.ws) return;
    clearInterval(this.heartbeat);
    for (const [id, { reject, message }] of this.pending) {
      if (message && !this.stopped) continue; // resent after the re-join
      reject(new ServerError("offline", "The connection dropped before the server answered."));
      this.pending.delete(id);
    }
    if (this.stopped) {
      this.setStatus("offline");
      return;
    }
    this.setStatus(this.welcome ? "reconnecting" : "connecting");
    // Full jitter: spread reconnects so a restarted server is not stampeded by every tab at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    this.attempt += 1;
    setTimeout(() => this.connect(), ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  // Browsers cannot send websocket pings; an unanswered application ping means a dead link.
  startHeartbeat() {
    clearInterval(this.heartbeat);
    this.awaitingPong = false;
    this.heartbeat = setInterval(() => {
      if (this.awaitingPong) {
        this.ws.close();
        return;
      }
      this.awaitingPong = this.send({ type: "ping", id: "heartbeat" });
    }, HEARTBEAT_MS);
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.emit("status", { status });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  on(type, handler) {
    this.addEventListener(type, (event) => handler(event.detail));
  }
}

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
