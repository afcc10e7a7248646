// The REST side of the p-chat client: the login session (tokens, refresh)
// and one `request` helper that every REST call goes through.
//
// Where the tokens live: **sessionStorage**, never localStorage or a cookie.
// - It survives a reload of the tab (a reload must not log the user out),
//   but not closing the tab, and it is not shared with other tabs.
// - Not sharing matters: refresh tokens rotate, and presenting a
//   rotated-away refresh token again revokes the whole login session. Two
//   tabs refreshing with one shared token would race and log each other out;
//   with sessionStorage each tab has its own login session and refreshes it
//   alone (one refresh in flight at a time, see `refresh`).
// - The page runs no third-party script (the CSP allows scripts from this
//   server only), which limits what could read the storage.
// Memory alone would lose the login on every reload; localStorage would
// share one refresh token between tabs and keep it after the browser closes.

const TOKENS_KEY = 'p-chat.tokens';

/** Refresh the access token this long before it expires (at most). */
const REFRESH_MARGIN_MS = 60_000;
/** A token expiring within this is refreshed before it is used. */
const NEARLY_EXPIRED_MS = 10_000;
/** Retry a scheduled refresh that failed for a network reason after this. */
const REFRESH_RETRY_MS = 5_000;

/** An error answered by the server, or a failure to reach it (status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The SHA-256 of a text as 64 lowercase hex characters. */
export async function sha256Hex(text) {
  if (!globalThis.crypto?.subtle) {
    throw new Error(
      'This browser cannot hash the password here: open p-chat over HTTPS (or on localhost).',
    );
  }
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** A random UUID (v4), also where `crypto.randomUUID` is missing. */
export function newId() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const STATUS_TEXT = {
  400: 'The request was refused',
  401: 'Not logged in',
  403: 'You are not allowed to do that',
  404: 'Not found',
  409: 'Conflict',
  413: 'Too large',
  415: 'Unsupported content type',
  429: 'Too many requests, slow down',
  503: 'The server is unavailable, try again shortly',
};

/** Reads one answer: the `data` of a success, or throws an `ApiError`. */
async function readAnswer(response) {
  let body = null;
  const text = await response.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (response.ok && body && body.status === 'Success') return body.data;
  if (response.ok) {
    throw new ApiError(response.status, 'bad_answer', 'The server sent an answer this client cannot read');
  }
  const error = body?.error;
  throw new ApiError(
    response.status,
    error?.code ?? `http_${response.status}`,
    error?.message ?? STATUS_TEXT[response.status] ?? `The server answered ${response.status}`,
  );
}

async function send(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Cannot reach the server (are you offline?)');
  }
  return readAnswer(response);
}

/**
 * The login session: holds the token set, refreshes the access token before
 * it expires, and retries a request once after a 401 with a fresh token.
 */
export class Session {
  /**
   * @param {object} hooks
   * @param {(tokens: object) => void} hooks.onTokens a new access token (to re-authenticate the socket)
   * @param {(reason: string) => void} hooks.onEnded the login session is over (refresh refused)
   * @param {(error: Error) => void} hooks.onError a background refresh failed
   */
  constructor({ onTokens, onEnded, onError }) {
    this.onTokens = onTokens;
    this.onEnded = onEnded;
    this.onError = onError;
    this.tokens = null;
    this.refreshing = null;
    this.timer = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(TOKENS_KEY) ?? 'null');
      if (saved?.access_token && saved?.refresh_token) this.tokens = saved;
    } catch {
      sessionStorage.removeItem(TOKENS_KEY);
    }
  }

  get loggedIn() {
    return this.tokens !== null;
  }

  /** Starts using a token set (after login, verification or refresh). */
  set(tokens) {
    this.tokens = tokens;
    sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    this.schedule();
  }

  /** Forgets the tokens (logout, or the session ended). */
  clear() {
    this.tokens = null;
    sessionStorage.removeItem(TOKENS_KEY);
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Arms the timer that refreshes the access token before it expires. */
  schedule(delayOverride) {
    clearTimeout(this.timer);
    if (!this.tokens) return;
    let delay = delayOverride;
    if (delay === undefined) {
      const remaining = Date.parse(this.tokens.access_token_valid_to) - Date.now();
      // A minute early, or at 80 % of a short lifetime.
      delay = remaining - Math.min(REFRESH_MARGIN_MS, remaining * 0.2);
    }
    this.timer = setTimeout(() => this.backgroundRefresh(), Math.max(1000, delay));
  }

  async backgroundRefresh() {
    try {
      await this.refresh();
    } catch (error) {
      if (!this.tokens) return; // the session ended: onEnded has said so
      this.onError(error);
      this.schedule(REFRESH_RETRY_MS);
    }
  }

  /** True when the access token expires within a few seconds (or has). */
  nearlyExpired() {
    if (!this.tokens) return false;
    return Date.parse(this.tokens.access_token_valid_to) - Date.now() < NEARLY_EXPIRED_MS;
  }

  /** A usable access token, refreshed first when it is about to expire. */
  async accessToken() {
    if (!this.tokens) throw new ApiError(401, 'logged_out', 'You are logged out');
    if (this.nearlyExpired()) await this.refresh();
    return this.tokens.access_token;
  }

  /**
   * Exchanges the refresh token for a new token set. Only one refresh runs at
   * a time: concurrent callers share it (a second refresh with the same,
   * already rotated token would revoke the session).
   */
  refresh() {
    if (this.refreshing) return this.refreshing;
    const tokens = this.tokens;
    if (!tokens) return Promise.reject(new ApiError(401, 'logged_out', 'You are logged out'));
    this.refreshing = (async () => {
      try {
        const fresh = await send('POST', '/session/refresh', {
          body: { refresh_token: tokens.refresh_token },
        });
        if (this.tokens !== tokens) {
          // Logged out (or in again) meanwhile: this answer is stale.
          throw new ApiError(401, 'logged_out', 'You are logged out');
        }
        this.set(fresh);
        this.onTokens(fresh);
        return fresh;
      } catch (error) {
        if (error.status === 401 && this.tokens === tokens) {
          this.clear();
          this.onEnded('Your login session has ended. Please log in again.');
        }
        throw error;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * A bearer request: the `data` of the answer. After a 401 it refreshes the
   * token (unless another request already did) and tries once more.
   */
  async request(method, path, body) {
    const token = await this.accessToken();
    try {
      return await send(method, path, { body, token });
    } catch (error) {
      if (error.status !== 401 || !this.tokens) throw error;
      if (this.tokens.access_token === token) await this.refresh();
      return send(method, path, { body, token: this.tokens.access_token });
    }
  }

  // The unauthenticated session endpoints.

  /** Registers; `invite` is the invitation token of an invite-only server, if any. */
  static register(email, passwordHash, invite) {
    const body = { email, password: passwordHash };
    if (invite) body.invite = invite;
    return send('POST', '/session/register', { body });
  }

  /** Asks for a mail (`forgotPassword` or `resendVerification`) to `email`. */
  static mailMe(kind, email) {
    return send('POST', `/session/${kind}`, { body: { email } });
  }

  static resetPassword(token, passwordHash) {
    return send('POST', '/session/resetPassword', { body: { token, password: passwordHash } });
  }

  static verify(verifyToken) {
    return send('GET', `/session/emailVerify?verifyToken=${encodeURIComponent(verifyToken)}`);
  }

  static authorize(email, passwordHash) {
    return send('POST', '/session/authorize', { body: { email, password: passwordHash } });
  }

  /** Ends the login session on the server (the caller clears it locally). */
  async logout() {
    if (!this.tokens) return;
    const { refresh_token } = this.tokens;
    // By refresh token: it works even when the access token has expired.
    await send('POST', '/session/logout', { body: { refresh_token } });
  }
}
