// The WebSocket side of the p-chat client: one connection to /ws that
// authenticates with a first `auth` frame (browsers cannot set headers),
// notices a dead connection by its own pings, and reconnects with
// exponential backoff. What to do after a (re)connect (sync every room) is
// the app's business: it gets `onReady`.

/** Send our own `ping` this often while connected. */
const PING_EVERY_MS = 5_000;
/** A connection that answers nothing for this long after a ping is dead. */
const PONG_TIMEOUT_MS = 4_000;
/** How often the heartbeat checks the above. */
const HEARTBEAT_MS = 1_000;
/** From opening the socket to `ready`, at most. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Backoff: the first retry delay, doubled per failure, capped. */
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8_000;

/** Close codes the server uses (docs/protocol.md). */
const CLOSE_REASONS = {
  1001: 'the server is restarting',
  1009: 'a message was too large',
  4001: 'authentication expired',
  4008: 'too many messages too fast, or the connection was too slow',
};

export class ChatSocket {
  /**
   * @param {object} hooks
   * @param {() => Promise<string>} hooks.getToken a usable access token
   * @param {() => void} hooks.onReady authenticated on a new connection
   * @param {(frame: object) => void} hooks.onFrame any other server frame
   * @param {(state: string, detail?: object) => void} hooks.onStatus connection state for the UI
   * @param {() => Promise<void>} hooks.onAuthExpired closed with 4001: refresh the tokens
   * @param {(message: string) => void} hooks.onError something the user should see
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    this.ws = null;
    this.ready = false;
    this.running = false;
    this.attempt = 0;
    this.retryTimer = null;
    this.heartbeat = null;
    this.openedAt = 0;
    this.lastHeard = 0;
    this.lastPing = 0;
    this.pingOutstanding = false;
    this.onOnline = () => {
      if (this.running && !this.ws) this.reconnectNow();
    };
    this.onOffline = () => this.probe();
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.connect();
  }

  stop() {
    this.running = false;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    this.drop(1000);
    this.hooks.onStatus('stopped');
  }

  /** Sends a frame if the connection is authenticated; false otherwise. */
  send(frame) {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Extends the connection with a fresh access token (same user). */
  reauthenticate(token) {
    if (this.ready && this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'auth', token }));
    }
  }

  async connect() {
    if (!this.running || this.ws) return;
    this.hooks.onStatus('connecting');
    let token;
    try {
      token = await this.hooks.getToken();
    } catch (error) {
      if (!this.running) return;
      if (error.status === 401) return; // the session ended; the app logs out
      this.scheduleReconnect();
      return;
    }
    if (!this.running || this.ws) return;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.hooks.onError(`Cannot open the connection: ${error.message}`);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.openedAt = Date.now();
    this.lastHeard = Date.now();
    this.pingOutstanding = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token }));
    ws.onmessage = (event) => this.receive(ws, event);
    ws.onclose = (event) => this.closed(ws, event.code);
    // An `error` event is always followed by `close`, which handles it.
    ws.onerror = () => {};
  }

  receive(ws, event) {
    if (ws !== this.ws) return;
    this.lastHeard = Date.now();
    this.pingOutstanding = false;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      this.hooks.onError('The server sent a frame this client cannot read');
      return;
    }
    if (frame.type === 'pong') return;
    if (frame.type === 'ready') {
      if (!this.ready) {
        this.ready = true;
        this.attempt = 0;
        this.lastPing = Date.now();
        this.hooks.onStatus('online');
        this.hooks.onReady(frame);
      }
      return; // a later `ready` answers a re-authentication
    }
    this.hooks.onFrame(frame);
  }

  async closed(ws, code) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    if (!this.running) return;
    if (code === 4001) {
      // The access token expired or the session was revoked: refresh (which
      // logs out if the session is over), then connect again.
      try {
        await this.hooks.onAuthExpired();
      } catch {
        // onAuthExpired reports its own errors
      }
      if (!this.running) return;
    } else if (CLOSE_REASONS[code] && code !== 1001) {
      this.hooks.onError(`Disconnected: ${CLOSE_REASONS[code]}. Reconnecting…`);
    }
    this.scheduleReconnect();
  }

  /** Forgets the current connection at once (handlers detached) and closes it. */
  drop(code) {
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(code);
    } catch {
      // closing an already closed socket
    }
  }

  scheduleReconnect() {
    clearTimeout(this.retryTimer);
    if (!this.running) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.hooks.onStatus('reconnecting', { delay, at: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  /** The connection looks dead: give it up and reconnect with backoff. */
  dead() {
    this.drop(4000);
    this.scheduleReconnect();
  }

  /** Asks for a pong now (used when the browser says it went offline). */
  probe() {
    if (!this.ready || this.ws?.readyState !== WebSocket.OPEN || this.pingOutstanding) return;
    this.ws.send(JSON.stringify({ type: 'ping' }));
    this.lastPing = Date.now();
    this.pingOutstanding = true;
  }

  beat() {
    if (!this.ws) return;
    const now = Date.now();
    if (!this.ready) {
      if (now - this.openedAt > CONNECT_TIMEOUT_MS) this.dead();
      return;
    }
    if (this.pingOutstanding) {
      if (now - this.lastPing > PONG_TIMEOUT_MS) this.dead();
    } else if (now - Math.max(this.lastPing, this.lastHeard) >= PING_EVERY_MS) {
      this.probe();
    }
  }
}
