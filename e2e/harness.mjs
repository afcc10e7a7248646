// The harness of the end-to-end tests: the real server binary on a free
// port, Debian's Chromium driven by playwright-core, and the helpers the
// tests share to drive the client the way a user does.
//
// Environment:
// - P_CHAT_BIN: the server binary (default: target/debug/p-chat in the workspace)
// - CHROMIUM: the browser (default: /usr/bin/chromium)
// - E2E_DEBUG=1 prints every WebSocket frame of the tests' pages
// Each test file gets its own server, in memory (no PSQL_HOST); its log and
// the screenshots go to target/e2e/.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.P_CHAT_BIN
  ? resolve(process.env.P_CHAT_BIN)
  : join(ROOT, 'target/debug/p-chat');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** Where screenshots and server logs go. */
export const OUT = join(ROOT, 'target/e2e');

/** Default bound of every single wait. */
export const WAIT_MS = 10_000;
/** Coming back online: the client must notice the dead socket, reconnect and sync. */
export const RECONNECT_MS = 30_000;

/**
 * Starts a server with `extraEnv` on top of the test settings and resolves
 * with its base URL (read from its log) and a function that stops it.
 */
/**
 * Abuse limits far above what the suite does (one browser registers and logs
 * in many times from 127.0.0.1); the limits have their own tests in
 * crates/app/tests/limits.rs.
 */
const GENEROUS_LIMITS = {
  WS_RATE_PER_SECOND: '10000',
  WS_RATE_BURST: '10000',
  RATE_LOGIN_IP: '100000/1s',
  RATE_LOGIN_ACCOUNT: '100000/1s',
  RATE_REGISTER_IP: '100000/1s',
  RATE_REGISTER_EMAIL: '100000/1s',
  RATE_VERIFY_IP: '100000/1s',
  RATE_RECOVERY_IP: '100000/1s',
  RATE_RECOVERY_EMAIL: '100000/1s',
  RATE_WS_UPGRADE_IP: '100000/1s',
  WS_MAX_CONNECTIONS_PER_USER: '100000',
  WS_MAX_UNAUTHENTICATED_PER_IP: '100000',
};

function startServer(name, extraEnv) {
  mkdirSync(OUT, { recursive: true });
  // Its own working directory: no developer `.env` (PSQL_HOST...) is read.
  const dir = mkdtempSync(join(tmpdir(), 'p-chat-e2e-'));
  const env = { ...process.env, PORT: '0', BCRYPT_COST: '4', RUST_LOG: 'info', BIND_ADDRESS: '127.0.0.1', ...GENEROUS_LIMITS, ...extraEnv };
  for (const variable of ['ALLOWED_ORIGINS', 'NO_COLOR']) delete env[variable];
  if (!extraEnv.PSQL_HOST) delete env.PSQL_HOST;
  const server = spawn(BIN, [], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const logName = `${name}.server.log`;
  const log = createWriteStream(join(OUT, logName));
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolvePromise) => server.once('exit', resolvePromise));
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
    rmSync(dir, { recursive: true, force: true });
  };
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not say where it listens within 20 s')), 20_000);
    server.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${BIN}: ${error.message} (build it: cargo build -p p-chat)`));
    });
    server.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited early (${code ?? signal}); see target/e2e/${logName}`));
    });
    // Keep reading stderr to the end: a full pipe would block the server.
    createInterface({ input: server.stderr }).on('line', (line) => {
      log.write(`${line}\n`);
      const found = /listening on (http:\/\/\S+)/.exec(line);
      if (found) {
        clearTimeout(timer);
        resolvePromise({ url: found[1].replace(/\/$/, ''), stop });
      }
    });
  });
}

function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    // As this machine needs them: no sandbox as root, and no background
    // connections (the network is closed).
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * The server and the browser of one test file, started before its tests and
 * stopped after them. `name` names the server's log; `env` adds settings
 * (ACCESS_TOKEN_SESSION_MINUTES...), or is a function giving them (awaited
 * in the hook, after the file's earlier `before` hooks).
 */
export function useServer(name, env = {}) {
  const running = { url: null, browser: null, stop: null };
  before(async () => {
    // `env` may be a function: settings known only once earlier hooks ran.
    const settings = typeof env === 'function' ? await env() : env;
    const server = await startServer(name, settings);
    running.url = server.url;
    running.stop = server.stop;
    running.browser = await launchBrowser();
  }, { timeout: 60_000 });
  after(async () => {
    await running.browser?.close().catch(() => {});
    await running.stop?.();
  });
  return {
    /** A page in a fresh browser context (a user of its own). */
    newUserPage: (label, options) => newUserPage(running.browser, label, options),
    /** Registers through the UI: the client verifies the email and logs in. */
    register: (page, email, password) => register(page, running.url, email, password),
    /** Opens the client's start page, or `path` on the server. */
    open: (page, path = '/') => page.goto(`${running.url}${path}`),
    /** The server's base URL (once started). */
    get url() {
      return running.url;
    },
  };
}

// ---------------------------------------------------------------- helpers

/** A page in a fresh browser context, with its console errors reported. */
async function newUserPage(browser, label, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1180, height: 760 }, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.setDefaultNavigationTimeout(WAIT_MS);
  page.on('pageerror', (error) => console.log(`[${label}] page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      console.log(`[${label}] console ${message.type()}: ${message.text()}`);
    }
  });
  if (process.env.E2E_DEBUG) {
    page.on('websocket', (ws) => {
      console.log(`${Date.now() % 100000} [${label}] websocket opened ${ws.url()}`);
      ws.on('framereceived', (frame) => console.log(`${Date.now() % 100000} [${label}] in  ${String(frame.payload).slice(0, 160)}`));
      ws.on('framesent', (frame) => console.log(`${Date.now() % 100000} [${label}] out ${String(frame.payload).slice(0, 160)}`));
      ws.on('close', () => console.log(`${Date.now() % 100000} [${label}] websocket closed`));
    });
  }
  // Confirmations (delete a message, leave a room) are accepted.
  page.on('dialog', (dialog) => dialog.accept());
  return { context, page };
}

/** Polls `check` until it stops throwing, at most `timeout` ms. */
export async function eventually(check, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolvePromise) => setTimeout(resolvePromise, 150));
    }
  }
}

/** The messages shown in the open room, in page order. */
export function shownMessages(page) {
  return page.getByTestId('message-list').locator('[data-testid="message"]').evaluateAll((nodes) =>
    nodes.map((node) => ({
      seq: node.dataset.seq === undefined ? null : Number(node.dataset.seq),
      pending: node.dataset.pending,
      author: node.querySelector('[data-testid="message-author"]').textContent,
      time: node.querySelector('[data-testid="message-time"]').textContent,
      body: node.querySelector('[data-testid="message-body"]').textContent,
      state: node.querySelector('[data-testid="message-state"]').textContent,
    })),
  );
}

/** Waits until the open room shows `body` once, acknowledged; returns it. */
export function waitForMessage(page, body, timeout = WAIT_MS) {
  return eventually(async () => {
    const found = (await shownMessages(page)).filter((message) => message.body === body);
    assert.equal(found.length, 1, `expected “${body}” shown once, found ${found.length}`);
    assert.equal(found[0].pending, 'false', `“${body}” is still pending`);
    return found[0];
  }, timeout);
}

export async function assertNoError(page, who) {
  const error = page.getByTestId('error');
  if (await error.isVisible()) {
    assert.fail(`${who} shows an error: ${await page.getByTestId('error-text').textContent()}`);
  }
}

async function register(page, url, email, password) {
  await page.goto(url);
  await page.getByTestId('register-email').fill(email);
  await page.getByTestId('register-password').fill(password);
  await page.getByTestId('register-submit').click();
  await page.getByTestId('logout').waitFor();
}

export async function logIn(page, email, password) {
  await page.getByTestId('login-email').fill(email);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('logout').waitFor();
}

/** The binary the tests run (for `p-chat admin ...`). */
export const SERVER_BIN = BIN;

export async function logOut(page) {
  await page.getByTestId('logout').click();
  await page.getByTestId('login-email').waitFor();
}

export async function waitOnline(page) {
  await page.locator('[data-testid="connection-status"][data-state="online"]').waitFor();
}

export function roomItem(page, name) {
  return page.locator(`[data-testid="room-item"][data-room-name="${name}"]`);
}

/** Types a message in the composer and sends it with Enter (or the button). */
export async function send(page, body, { withButton = false } = {}) {
  const composer = page.getByTestId('composer');
  await composer.fill(body);
  if (withButton) await page.getByTestId('send').click();
  else await composer.press('Enter');
}

/**
 * A REST call made as the user logged in on `page` (with its access token);
 * resolves with the answer's `data`, or rejects with the status and body.
 */
export function apiAs(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const { access_token: token } = JSON.parse(sessionStorage.getItem('p-chat.tokens'));
      const headers = { Authorization: `Bearer ${token}` };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const answer = await fetch(path, { method, headers, body: payload });
      const text = await answer.text();
      if (!answer.ok) throw new Error(`${method} ${path}: ${answer.status} ${text}`);
      return JSON.parse(text).data;
    },
    { method, path, body },
  );
}

/**
 * Takes a user's browser offline (as the test "a pending message is shown
 * until acknowledged, and sent after a reconnect" does) and waits until its
 * client has noticed.
 */
export async function goOffline(user) {
  await user.context.setOffline(true);
  await user.page
    .locator('[data-testid="connection-status"][data-state="reconnecting"]')
    .waitFor({ timeout: RECONNECT_MS });
}

/**
 * Marks the page, so that `assertNotReloaded` can tell that what it shows
 * came without a reload (a reload or navigation drops the mark).
 */
export function markPage(page) {
  return page.evaluate(() => {
    window.e2eMark = true;
  });
}

export async function assertNotReloaded(page, who) {
  assert.equal(await page.evaluate(() => window.e2eMark === true), true, `${who}'s page was reloaded`);
}
