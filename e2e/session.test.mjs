// End-to-end tests of the client's login session. Email verification by
// link, and a server that mails the token instead of returning it. On this
// server access tokens live one minute: the client refreshes the token before it expires
// and re-authenticates its open WebSocket with an `auth` frame, so the same
// connection lives on past the first token's expiry (the server would close
// it with 4001 otherwise). The user drives the client with the keyboard only.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import {
  assertNoError,
  eventually,
  logOut,
  roomItem,
  useServer,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const server = useServer('session', { ACCESS_TOKEN_SESSION_MINUTES: '1' });

const { newUserPage, open } = server;

/** A little past the expiry of the first access token. */
const PAST_EXPIRY_MS = 3_000;

test('the access token is refreshed before it expires and the socket is re-authenticated', { timeout: 120_000 }, async () => {
  const { context, page } = await newUserPage('H');
  const sockets = [];
  const authTokens = [];
  page.on('websocket', (ws) => {
    sockets.push(ws);
    ws.on('framesent', (frame) => {
      try {
        const sent = JSON.parse(String(frame.payload));
        if (sent.type === 'auth') authTokens.push(sent.token);
      } catch {
        // Not JSON: not an auth frame.
      }
    });
  });

  // Register with the keyboard: labelled fields, Tab between them, Enter submits.
  await open(page);
  const registerForm = page.getByTestId('register-form');
  await registerForm.getByLabel('Email').focus();
  await page.keyboard.type('hana@example.com');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'register-password');
  await page.keyboard.type('hana password');
  await page.keyboard.press('Enter');
  await page.getByTestId('logout').waitFor();
  await waitOnline(page);
  const first = await page.evaluate(() => JSON.parse(sessionStorage.getItem('p-chat.tokens')));

  // Create a room with the keyboard: open the tool, type the name, Enter.
  await page.getByTestId('new-room-toggle').focus();
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-room-name');
  await page.keyboard.type('Night shift');
  await page.keyboard.press('Enter');
  await roomItem(page, 'Night shift').waitFor();
  await page.getByTestId('composer').focus();
  await page.keyboard.type('first token');
  await page.keyboard.press('Enter');
  await waitForMessage(page, 'first token');

  // The refresh comes before the expiry, and the open socket gets the new token.
  const expiry = Date.parse(first.access_token_valid_to);
  const refreshed = await page.waitForResponse(
    (response) => response.url().endsWith('/session/refresh') && response.status() === 200,
    { timeout: expiry - Date.now() },
  );
  const fresh = (await refreshed.json()).data;
  assert.notEqual(fresh.access_token, first.access_token);
  await eventually(() => assert.deepEqual(authTokens, [first.access_token, fresh.access_token]));

  // Past the first token's expiry the same connection still works.
  await new Promise((resolvePromise) => setTimeout(resolvePromise, expiry + PAST_EXPIRY_MS - Date.now()));
  assert.equal(sockets.length, 1, 'the client opened another socket');
  assert.equal(sockets[0].isClosed(), false, 'the socket was closed');
  await waitOnline(page);
  await page.getByTestId('composer').focus();
  await page.keyboard.type('second token');
  await page.keyboard.press('Enter');
  await waitForMessage(page, 'second token');
  assert.equal(sockets.length, 1, 'the client opened another socket');

  await assertNoError(page, 'H');
  await context.close();
});

test('a verification link logs the user in once', { timeout: 30_000 }, async () => {
  const { context, page } = await newUserPage('I');
  const password = createHash('sha256').update('iris password').digest('hex');
  const answer = await page.request.post(`${server.url}/session/register`, {
    data: { email: 'iris@example.com', password },
  });
  assert.equal(answer.status(), 200);
  const token = (await answer.json()).data.VerificationToken;

  await open(page, `/?verifyToken=${encodeURIComponent(token)}`);
  await page.getByTestId('logout').waitFor();
  assert.equal(await page.getByTestId('current-user').textContent(), 'iris');
  assert.equal(new URL(page.url()).search, '', 'the token stays in the address bar');
  await assertNoError(page, 'I');

  // Used once: the same link now explains itself and leaves the user logged out.
  await logOut(page);
  await open(page, `/?verifyToken=${encodeURIComponent(token)}`);
  await page.getByTestId('error').waitFor();
  assert.match(await page.getByTestId('error-text').textContent(), /invalid, used or expired/);
  await page.getByTestId('login-email').waitFor();
  await context.close();
});

test('when the server mails the verification token, the client says so', { timeout: 30_000 }, async () => {
  const { context, page } = await newUserPage('J');
  // A server that sends emails answers register without the token.
  await page.route('**/session/register', (route) =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ status: 'Success', data: { message: 'User registered successfully' } }),
    }),
  );
  await open(page);
  await page.getByTestId('register-email').fill('jon@example.com');
  await page.getByTestId('register-password').fill('jon password');
  await page.getByTestId('register-submit').click();
  await page.getByTestId('auth-notice').waitFor();
  assert.match(await page.getByTestId('auth-notice').textContent(), /verification email to jon@example\.com/);
  assert.equal(await page.getByTestId('login-form').isVisible(), true);
  await assertNoError(page, 'J');
  await context.close();
});
