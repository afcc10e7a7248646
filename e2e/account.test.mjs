// End-to-end tests of account safety in the browser, on PostgreSQL with a
// real SMTP server (the tests' aiosmtpd sink): the first administrator is
// made on the console with `p-chat admin create-user --admin`, as a
// self-hoster does; a user signs another device out from the session list;
// an administrator disables a user, who is then signed out in their
// browser; a forgotten password is reset through the mailed link.
// Without PostgreSQL or aiosmtpd the tests are skipped (failed with CI=true).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SERVER_BIN, WAIT_MS, eventually, logIn, useServer, waitOnline } from './harness.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SINK = join(ROOT, 'crates/app/tests/support/smtp_sink.py');
const DATABASE_URL = new URL(process.env.P_CHAT_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432');
/** The base of the mailed links; the tests open their paths on the test server. */
const PUBLIC_URL = 'http://p-chat.test';
const ADMIN = { email: 'root@example.com', password: 'root password' };

const prerequisites = { missing: null, database: null, sink: null, mailDir: null };

/** psql against the test server's maintenance database. */
function psql(sql) {
  return spawnSync(
    'psql',
    ['-h', DATABASE_URL.hostname, '-p', DATABASE_URL.port || '5432', '-U', DATABASE_URL.username || 'postgres', '-d', 'postgres', '-qAtc', sql],
    { encoding: 'utf8', env: { ...process.env, PGPASSWORD: decodeURIComponent(DATABASE_URL.password) } },
  );
}

function databaseEnv() {
  return {
    PSQL_HOST: DATABASE_URL.hostname,
    PSQL_PORT: DATABASE_URL.port || '5432',
    PSQL_USER: DATABASE_URL.username || 'postgres',
    PSQL_PASSWORD: decodeURIComponent(DATABASE_URL.password),
    PSQL_DB: prerequisites.database,
    JWT_SECRET: 'an end-to-end test secret of 32+ bytes!',
  };
}

/** Starts the SMTP sink; resolves with its port. */
function startSink() {
  prerequisites.mailDir = mkdtempSync(join(tmpdir(), 'p-chat-e2e-mail-'));
  const sink = spawn('python3', [SINK, prerequisites.mailDir], { stdio: ['pipe', 'pipe', 'inherit'] });
  prerequisites.sink = sink;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('the SMTP sink did not start')), 10_000);
    sink.once('exit', (code) => reject(new Error(`the SMTP sink exited (${code})`)));
    createInterface({ input: sink.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const port = /^listening on (\d+)$/.exec(line.trim())?.[1];
      if (port) resolvePromise(port);
      else reject(new Error(`the SMTP sink said: ${line}`));
    });
  });
}

/**
 * Everything the server needs before it starts: the prerequisites checked,
 * a database, the SMTP sink and the first administrator. Run by the
 * server's own hook (node runs a file's root hooks concurrently).
 */
async function prepare() {
  if (spawnSync('python3', ['-c', 'import aiosmtpd']).status !== 0) {
    prerequisites.missing = 'python3 with aiosmtpd (pip install aiosmtpd)';
  } else if (psql('SELECT 1').status !== 0) {
    prerequisites.missing = `PostgreSQL at ${DATABASE_URL.host} (P_CHAT_TEST_DATABASE_URL)`;
  }
  if (prerequisites.missing) {
    const message = `SKIPPED (browser account tests): no ${prerequisites.missing}`;
    if (process.env.CI === 'true') throw new Error(`${message}, and CI=true`);
    console.log(message);
    return;
  }
  prerequisites.database = `p_chat_e2e_${process.pid}_${Date.now()}`;
  assert.equal(psql(`CREATE DATABASE ${prerequisites.database}`).status, 0);
  prerequisites.smtpPort = await startSink();
  // The first administrator, made on the console (the password on stdin).
  const made = spawnSync(SERVER_BIN, ['admin', 'create-user', ADMIN.email, '--admin'], {
    input: `${ADMIN.password}\n`,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, BCRYPT_COST: '4', ...databaseEnv() },
  });
  assert.equal(made.status, 0, made.stderr);
  assert.match(made.stdout, / admin active/);
}

const server = useServer('account', async () => {
  await prepare();
  if (prerequisites.missing) return {};
  return {
    ...databaseEnv(),
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: prerequisites.smtpPort,
    SMTP_TLS: 'none',
    SMTP_FROM: 'p-chat@example.com',
    PUBLIC_URL,
  };
});
const { newUserPage, open } = server;

after(() => {
  prerequisites.sink?.stdin.end();
  prerequisites.sink?.kill();
  if (prerequisites.mailDir) rmSync(prerequisites.mailDir, { recursive: true, force: true });
  if (prerequisites.database) {
    psql(`DROP DATABASE IF EXISTS ${prerequisites.database} WITH (FORCE)`);
  }
});

const taken = new Set();

/** The next mail to `to` (decoded headers and text), not handed out before. */
function waitForMail(to) {
  return eventually(() => {
    const names = readdirSync(prerequisites.mailDir).filter((name) => name.endsWith('.rcpt'));
    for (const name of names.sort((a, b) => parseInt(a, 10) - parseInt(b, 10))) {
      if (taken.has(name)) continue;
      const recipients = readFileSync(join(prerequisites.mailDir, name), 'utf8').split('\n');
      if (!recipients.includes(to)) continue;
      taken.add(name);
      return readFileSync(join(prerequisites.mailDir, name.replace('.rcpt', '.txt')), 'utf8');
    }
    throw new Error(`no mail to ${to} yet`);
  }, WAIT_MS);
}

/** The path and query of the link with `parameter` in `mail`. */
function linkIn(mail, parameter) {
  const found = new RegExp(`${PUBLIC_URL.replace(/\./g, '\\.')}(/\\?${parameter}=[0-9a-f]+)`).exec(mail);
  assert.ok(found, `no ${parameter} link in:\n${mail}`);
  return found[1];
}

/** Registers `email` in the UI and follows the mailed verification link. */
async function registerAndVerify(page, email, password) {
  await open(page);
  await page.getByTestId('register-email').fill(email);
  await page.getByTestId('register-password').fill(password);
  await page.getByTestId('register-submit').click();
  await page.getByTestId('auth-notice').filter({ hasText: 'verification email' }).waitFor();
  await open(page, linkIn(await waitForMail(email), 'verifyToken'));
  await page.getByTestId('logout').waitFor();
  await waitOnline(page);
}

/** Waits until `page` is back on the login page, told it was signed out. */
async function assertSignedOut(page) {
  await page.getByTestId('login-email').waitFor({ timeout: 20_000 });
  await eventually(async () => {
    assert.match(await page.getByTestId('auth-notice').textContent(), /signed out/i);
  });
}

const skipWithout = (t) => {
  if (prerequisites.missing) t.skip(`no ${prerequisites.missing}`);
  return Boolean(prerequisites.missing);
};

test('a user signs another of their devices out from the session list', { timeout: 60_000 }, async (t) => {
  if (skipWithout(t)) return;
  const laptop = await newUserPage('laptop');
  const phone = await newUserPage('phone');
  await registerAndVerify(laptop.page, 'devices@example.com', 'devices password');
  await open(phone.page);
  await logIn(phone.page, 'devices@example.com', 'devices password');
  await waitOnline(phone.page);

  await laptop.page.getByTestId('account-open').click();
  const sessions = laptop.page.getByTestId('session-list').getByTestId('session');
  await eventually(async () => assert.equal(await sessions.count(), 2));
  assert.equal(await laptop.page.locator('[data-testid="session"][data-current="true"]').count(), 1);
  await laptop.page.getByTestId('session-sign-out').click();
  await eventually(async () => assert.equal(await sessions.count(), 1));

  await assertSignedOut(phone.page);
  // The laptop stays signed in and connected.
  await laptop.page.getByTestId('account-close').click();
  await waitOnline(laptop.page);
  await laptop.context.close();
  await phone.context.close();
});

test('an administrator disables a user, who is signed out in their browser', { timeout: 60_000 }, async (t) => {
  if (skipWithout(t)) return;
  const admin = await newUserPage('admin');
  const user = await newUserPage('user');
  await registerAndVerify(user.page, 'troll@example.com', 'troll password');
  await open(admin.page);
  await logIn(admin.page, ADMIN.email, ADMIN.password);
  await admin.page.getByTestId('admin-open').click();
  await admin.page.getByTestId('admin-search').fill('troll');
  await admin.page.getByTestId('admin-search-submit').click();
  const row = admin.page.locator('[data-testid="admin-user"][data-email="troll@example.com"]');
  await row.getByTestId('admin-disable').click();
  await row.getByTestId('admin-enable').waitFor();
  assert.match(await row.getByTestId('admin-user-state').textContent(), /disabled/);

  await assertSignedOut(user.page);
  await user.page.getByTestId('login-email').fill('troll@example.com');
  await user.page.getByTestId('login-password').fill('troll password');
  await user.page.getByTestId('login-submit').click();
  await eventually(async () => {
    assert.match(await user.page.getByTestId('error-text').textContent(), /wrong email or password/i);
  });
  // Only administrators see the Admin entry.
  assert.equal(await user.page.getByTestId('admin-open').isVisible(), false);
  await admin.context.close();
  await user.context.close();
});

test('a forgotten password is reset through the mailed link', { timeout: 60_000 }, async (t) => {
  if (skipWithout(t)) return;
  const { context, page } = await newUserPage('forgetful');
  await registerAndVerify(page, 'forgetful@example.com', 'first password');
  await page.getByTestId('logout').click();

  await page.getByTestId('login-email').fill('forgetful@example.com');
  await page.getByTestId('recovery-toggle').click();
  await page.getByTestId('forgot-password').click();
  await page.getByTestId('auth-notice').filter({ hasText: 'reset link' }).waitFor();
  await open(page, linkIn(await waitForMail('forgetful@example.com'), 'resetToken'));
  assert.ok(!page.url().includes('resetToken'), 'the token leaves the address bar');
  await page.getByTestId('reset-password').fill('second password');
  await page.getByTestId('reset-confirm').fill('second password');
  await page.getByTestId('reset-submit').click();
  await page.getByTestId('auth-notice').filter({ hasText: 'password was changed' }).waitFor();

  await page.getByTestId('login-email').fill('forgetful@example.com');
  await page.getByTestId('login-password').fill('first password');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('error-text').filter({ hasText: /wrong email or password/i }).waitFor();
  await logIn(page, 'forgetful@example.com', 'second password');
  await waitOnline(page);
  await context.close();
});

// The sink script must exist where the Rust mail tests keep it.
assert.ok(existsSync(SINK), SINK);
