// Talking to the PitBox server: HTTP with the bearer token, and one WebSocket that reconnects by itself.

const TOKEN_KEY = "pitbox.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** HTTP calls to the API with the token kept in sessionStorage (gone when the tab closes). */
export class Api {
  constructor(onUnauthorized) {
    this.onUnauthorized = onUnauthorized;
  }

  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  }

  async login(email, password) {
    const answer = await this.request("POST", "/api/auth/login", { email, password }, false);
    this.token = answer.accessToken;
    return answer;
  }

  /** Forget the token here and revoke it on the server (best effort: signed out locally either way). */
  logout() {
    const token = this.token;
    this.token = null;
    if (token) {
      // keepalive: the request still goes out when the tab is closed right after.
      fetch("/api/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` }, keepalive: true })
        .catch(() => {});
    }
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  async request(method, path, body, authorized = true) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (authorized && this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const error = payload && payload.error ? payload.error : { code: "http_error", message: response.statusText };
      if (response.status === 401 && authorized) this.onUnauthorized();
      throw new ApiError(response.status, error.code, error.message);
    }
    return payload;
  }

  /** Download a response as a file (a plain link cannot carry the Authorization header). */
  async download(path, filename) {
    const response = await fetch(path, { headers: { Authorization: `Bearer ${this.token}` } });
    if (!response.ok) throw new ApiError(response.status, "download_failed", `download failed (${response.status})`);
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  /** A URL for <audio>/<img>, which cannot send headers: the token goes in `?token=` (never logged). */
  mediaUrl(path) {
    const separator = path.includes("?") ? "&" : "?";
    return `${path}${separator}token=${encodeURIComponent(this.token || "")}`;
  }
}

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const SILENCE_LIMIT_MS = 60_000; // the server sends a keepalive after 25 s without traffic
/** What the login form says when the server ends the socket's sign-in (error code before close 4401). */
const SIGNED_OUT = {
  token_expired: "Your session expired; please log in again.",
  token_revoked: "You were signed out (from another device, or the password changed); please log in again.",
  invalid_token: "Your sign-in is no longer accepted; please log in again.",
  invalid_api_key: "This key was revoked.",
};

/**
 * One socket with any number of subscriptions. The token travels in Sec-WebSocket-Protocol, not in the URL.
 * On a drop it reconnects with exponential backoff and jitter, and subscribes again to everything, with the
 * last seq/epoch for channels that keep history (ai:, session:) so missed coaching is replayed.
 */
export class LiveSocket {
  constructor(tokenOf, { onMessage, onState, onFatal, onRevoked = () => {} }) {
    this.tokenOf = tokenOf;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onFatal = onFatal;
    this.onRevoked = onRevoked;
    this.signedOut = null; // why the server is about to close the socket with 4401
    this.subscriptions = new Map(); // channel -> options
    this.positions = new Map(); // channel -> {epoch, seq}
    this.socket = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.watchdog = null;
    this.closedByUs = false;
    this.lastFrameAt = 0;
    this.received = 0;
  }

  connect() {
    this.closedByUs = false;
    this.signedOut = null;
    clearTimeout(this.retryTimer);
    const token = this.tokenOf();
    if (!token) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.setState("connecting");
    const socket = new WebSocket(`${scheme}://${location.host}/ws`, ["pitbox", `bearer.${token}`]);
    this.socket = socket;
    socket.onopen = () => {
      this.lastFrameAt = Date.now();
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.closed(socket, event);
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (this.socket === socket && socket.readyState === WebSocket.OPEN && Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        socket.close(4000, "silent");
      }
    }, 5_000);
  }

  close() {
    this.closedByUs = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.setState("offline");
  }

  subscribe(channel, options = {}) {
    this.subscriptions.set(channel, options);
    this.sendSubscribe(channel);
  }

  unsubscribe(channel) {
    if (!this.subscriptions.delete(channel)) return;
    this.positions.delete(channel);
    this.send({ type: "unsubscribe", channel });
  }

  sendSubscribe(channel) {
    const frame = { type: "subscribe", channel, ...this.subscriptions.get(channel) };
    const position = this.positions.get(channel);
    if (position && (channel.startsWith("ai:") || channel.startsWith("session:"))) {
      frame.lastSeq = position.seq;
      frame.epoch = position.epoch;
    }
    this.send(frame);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.authenticated) {
      this.socket.send(JSON.stringify(frame));
    }
  }

  receive(text) {
    this.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    switch (frame.type) {
      case "authenticated":
        this.authenticated = true;
        this.attempt = 0;
        this.setState("live");
        for (const channel of this.subscriptions.keys()) this.sendSubscribe(channel);
        break;
      case "subscribed":
        this.positions.set(frame.channel, { epoch: frame.epoch, seq: frame.seq });
        break;
      case "message": {
        this.received += 1;
        const position = this.positions.get(frame.channel);
        if (position) position.seq = frame.seq;
        this.onMessage(frame.channel, frame.data, frame.seq);
        break;
      }
      case "resync":
        this.positions.set(frame.channel, { epoch: frame.epoch, seq: frame.seq });
        this.onMessage(frame.channel, { type: "resync", reason: frame.reason }, frame.seq);
        break;
      case "error":
        if (frame.code === "subscription_revoked") {
          // Access to this channel was withdrawn: do not ask for it again on the next reconnect.
          this.subscriptions.delete(frame.channel);
          this.positions.delete(frame.channel);
          this.onRevoked(frame.channel);
        } else if (Object.hasOwn(SIGNED_OUT, frame.code)) {
          this.signedOut = SIGNED_OUT[frame.code]; // the 4401 close that follows says this
        }
        break;
      default:
        break; // pong, keepalive, unsubscribed
    }
  }

  closed(socket, event) {
    if (this.socket !== socket) return;
    this.authenticated = false;
    this.socket = null;
    if (this.closedByUs) return;
    if (event.code === 4401 || event.code === 4403) {
      this.setState("offline");
      this.onFatal(event.code === 4401 ? this.signedOut || SIGNED_OUT.token_expired : "this page's origin is not allowed");
      this.signedOut = null;
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt += 1;
    this.setState("reconnecting", Math.round(delay / 1000));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }
}
