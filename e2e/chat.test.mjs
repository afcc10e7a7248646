// End-to-end tests of the p-chat browser client: the real server binary, the
// embedded client, and Debian's Chromium driven by playwright-core (see
// harness.mjs for the environment). Run from the workspace root:
// `node --test e2e/`.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  OUT,
  RECONNECT_MS,
  assertNoError,
  eventually,
  logIn,
  logOut,
  roomItem,
  send,
  shownMessages,
  useServer,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const { newUserPage, register } = useServer('chat');

// ---------------------------------------------------------------- the scenario

test('two users chat live, catch up after a reload and after going offline', { timeout: 100_000 }, async () => {
  const password = 'correct horse battery staple';
  const alice = { email: 'alice@example.com', name: 'alice' };
  const bob = { email: 'bob@example.com', name: 'bob' };
  const room = 'Project X';
  const A = await newUserPage('A');
  const B = await newUserPage('B', { viewport: { width: 1000, height: 720 } });

  // Both register (which verifies the email and logs in), log out, and log in again.
  await register(A.page, alice.email, password);
  await register(B.page, bob.email, password);
  assert.equal(await A.page.getByTestId('current-user').textContent(), alice.name);
  await logOut(A.page);
  await logIn(A.page, alice.email, password);
  await logOut(B.page);
  await logIn(B.page, bob.email, password);
  await waitOnline(A.page);
  await waitOnline(B.page);

  // A creates a private room and adds B by email.
  await A.page.getByTestId('new-room-toggle').click();
  await A.page.getByTestId('new-room-name').fill(room);
  await A.page.getByTestId('new-room-visibility').selectOption('private');
  await A.page.getByTestId('create-room').click();
  await roomItem(A.page, room).waitFor();
  await A.page.locator(`[data-testid="room-title"][data-room-name="${room}"]`).waitFor();
  await A.page.getByTestId('members-toggle').click();
  await A.page.getByTestId('add-member-email').fill(bob.email);
  await A.page.getByTestId('add-member-submit').click();
  await A.page.getByTestId('member-list').getByText(bob.name).waitFor();
  await A.page.getByTestId('members-toggle').click();

  // The room appears for B without a reload (a member_joined event).
  await roomItem(B.page, room).waitFor();

  // A writes; B sees the unread count, opens the room and answers.
  const hello = 'Hello Bob, welcome to Project X!';
  await send(A.page, hello);
  const helloOnA = await waitForMessage(A.page, hello);
  assert.equal(helloOnA.author, alice.name);
  assert.match(helloOnA.time, /\d/);
  await eventually(async () => assert.equal(await roomItem(B.page, room).getAttribute('data-unread'), '1'));
  await roomItem(B.page, room).click();
  const helloOnB = await waitForMessage(B.page, hello);
  assert.equal(helloOnB.author, alice.name);
  assert.equal(helloOnB.seq, helloOnA.seq);
  await eventually(async () => assert.equal(await roomItem(B.page, room).getAttribute('data-unread'), '0'));

  // B types (A sees it), then sends with the button.
  const reply = 'Hi Alice! Glad to be here.';
  await B.page.getByTestId('composer').pressSequentially('Hi Alice', { delay: 10 });
  await eventually(async () =>
    assert.match(await A.page.getByTestId('typing-indicator').textContent(), /bob is typing/),
  );
  await B.page.getByTestId('composer').fill(reply);
  await B.page.getByTestId('send').click();
  const replyOnA = await waitForMessage(A.page, reply);
  assert.equal(replyOnA.author, bob.name);
  await waitForMessage(B.page, reply);

  // A edits its message and deletes a mistaken one; B sees both live.
  const edited = 'Hello Bob, welcome to Project X, the plan is in the pinned doc.';
  await A.page.getByTestId('message').filter({ hasText: hello }).hover();
  await A.page.getByTestId('message').filter({ hasText: hello }).getByTestId('message-edit').click();
  await A.page.getByTestId('edit-input').fill(edited);
  await A.page.getByTestId('edit-input').press('Enter');
  const editedOnB = await waitForMessage(B.page, edited);
  assert.equal(editedOnB.state, '(edited)');
  const oops = 'oops, wrong room';
  await send(A.page, oops);
  const oopsOnA = await waitForMessage(A.page, oops);
  await waitForMessage(B.page, oops);
  const oopsNode = A.page.locator(`[data-testid="message"][data-seq="${oopsOnA.seq}"]`);
  await oopsNode.hover();
  await oopsNode.getByTestId('message-delete').click();
  await eventually(async () => {
    const tombstone = (await shownMessages(B.page)).find((message) => message.seq === oopsOnA.seq);
    assert.equal(tombstone?.body, 'This message was deleted.');
  });

  // B reloads and sees the history.
  await B.page.reload();
  await B.page.getByTestId('room-list').waitFor();
  await roomItem(B.page, room).click();
  await eventually(async () => {
    const bodies = (await shownMessages(B.page)).map((message) => message.body);
    assert.deepEqual(bodies, [edited, reply, 'This message was deleted.']);
  });
  await waitOnline(B.page);

  // A goes offline; B sends three messages; A comes back and gets each once, in order.
  const before = await shownMessages(A.page);
  await A.context.setOffline(true);
  // A's client notices (the browser's offline event, then no pong to its ping).
  await A.page
    .locator('[data-testid="connection-status"][data-state="reconnecting"]')
    .waitFor({ timeout: RECONNECT_MS });
  const missed = ['While you were away: one', 'While you were away: two', 'While you were away: three'];
  for (const body of missed) {
    await send(B.page, body);
    await waitForMessage(B.page, body);
  }
  const whileOffline = (await shownMessages(A.page)).map((message) => message.body);
  assert.ok(!whileOffline.includes(missed[0]), 'A got a message while offline');
  await A.context.setOffline(false);
  await eventually(async () => {
    const shown = await shownMessages(A.page);
    const bodies = shown.map((message) => message.body);
    assert.deepEqual(bodies, [...before.map((message) => message.body), ...missed]);
    const seqs = shown.map((message) => message.seq);
    assert.ok(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]), `seqs not increasing: ${seqs}`);
    assert.ok(shown.every((message) => message.pending === 'false'));
  }, RECONNECT_MS);
  await waitOnline(A.page);

  // And the conversation goes on after the reconnect.
  const back = 'Back online, got all three.';
  await send(A.page, back);
  await waitForMessage(B.page, back);
  await waitForMessage(A.page, back);

  await assertNoError(A.page, 'A');
  await assertNoError(B.page, 'B');
  await A.page.screenshot({ path: join(OUT, 'chat.png') });
  await A.context.close();
  await B.context.close();
});

test('a pending message is shown until acknowledged, and sent after a reconnect', { timeout: 60_000 }, async () => {
  const C = await newUserPage('C');
  await register(C.page, 'carol@example.com', 'carol password');
  await waitOnline(C.page);
  await C.page.getByTestId('new-room-toggle').click();
  await C.page.getByTestId('new-room-name').fill('Notes');
  await C.page.getByTestId('new-room-visibility').selectOption('public');
  await C.page.getByTestId('create-room').click();
  await roomItem(C.page, 'Notes').waitFor();

  // Offline: the message stays visibly pending...
  await C.context.setOffline(true);
  await C.page.locator('[data-testid="connection-status"][data-state="reconnecting"]').waitFor({ timeout: RECONNECT_MS });
  await send(C.page, 'written offline');
  await C.page.locator('[data-testid="message"][data-pending="true"]').filter({ hasText: 'written offline' }).waitFor();
  // ...and goes out, once, when the connection is back.
  await C.context.setOffline(false);
  await waitForMessage(C.page, 'written offline', RECONNECT_MS);
  await assertNoError(C.page, 'C');
  await C.context.close();
});

test('on a phone-sized screen the client is a single column', { timeout: 60_000 }, async () => {
  const D = await newUserPage('D', { viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true });
  await register(D.page, 'dave@example.com', 'dave password');
  const overflow = () => D.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok((await overflow()) <= 0, 'the page scrolls sideways');
  await D.page.getByTestId('new-room-toggle').click();
  await D.page.getByTestId('new-room-name').fill('Mobile');
  await D.page.getByTestId('create-room').click();
  // The open room replaces the list...
  await D.page.getByTestId('composer').waitFor();
  assert.equal(await D.page.getByTestId('room-list').isVisible(), false);
  await send(D.page, 'Hello from a phone');
  await waitForMessage(D.page, 'Hello from a phone');
  assert.ok((await overflow()) <= 0, 'the page scrolls sideways');
  await D.page.screenshot({ path: join(OUT, 'phone.png') });
  // ...and "back" shows the list again.
  await D.page.getByTestId('back').click();
  await D.page.getByTestId('room-list').waitFor();
  assert.equal(await D.page.getByTestId('composer').isVisible(), false);
  await assertNoError(D.page, 'D');
  await D.context.close();
});

test('public rooms, direct conversations, leaving, and scrolling back through history', { timeout: 60_000 }, async () => {
  const E = await newUserPage('E');
  const F = await newUserPage('F');
  await register(E.page, 'erin@example.com', 'erin password');
  await register(F.page, 'frank@example.com', 'frank password');
  await waitOnline(E.page);
  await waitOnline(F.page);

  // E opens a public room with a long history (seeded over the REST API).
  await E.page.getByTestId('new-room-toggle').click();
  await E.page.getByTestId('new-room-name').fill('Town square');
  await E.page.getByTestId('new-room-visibility').selectOption('public');
  await E.page.getByTestId('create-room').click();
  await roomItem(E.page, 'Town square').waitFor();
  const total = 75;
  await E.page.evaluate(async (count) => {
    const { access_token: token } = JSON.parse(sessionStorage.getItem('p-chat.tokens'));
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const rooms = await (await fetch('/rooms', { headers })).json();
    const room = rooms.data.find((candidate) => candidate.name === 'Town square');
    for (let i = 1; i <= count; i += 1) {
      const answer = await fetch(`/rooms/${room.id}/messages`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ body: `history ${i}`, client_msg_id: `seed-${i}` }),
      });
      if (!answer.ok) throw new Error(`seeding failed: ${answer.status}`);
    }
  }, total);
  await waitForMessage(E.page, `history ${total}`);

  // F finds it, joins, sees the newest page, and scrolls back to the start.
  await F.page.getByTestId('browse-toggle').click();
  await F.page.getByTestId('public-search').fill('town');
  await F.page.getByTestId('public-search-submit').click();
  await F.page.locator('[data-testid="public-room"][data-room-name="Town square"]').getByTestId('join-room').click();
  await roomItem(F.page, 'Town square').waitFor();
  await waitForMessage(F.page, `history ${total}`);
  const firstPage = await shownMessages(F.page);
  assert.equal(firstPage.length, 50);
  assert.equal(firstPage[0].seq, total - 49);
  await eventually(async () => {
    await F.page.locator('#message-scroller').evaluate((scroller) => {
      scroller.scrollTop = 0;
    });
    const all = await shownMessages(F.page);
    assert.equal(all.length, total);
    assert.deepEqual(
      all.map((message) => message.seq),
      Array.from({ length: total }, (_, i) => i + 1),
    );
  });
  await F.page.getByText('This is the beginning of the room.').waitFor();

  // E sees F in the member list (member_joined), live.
  await eventually(async () =>
    assert.equal(await E.page.getByTestId('members-toggle').textContent(), '2 members'),
  );

  // F starts a direct conversation with E: it appears for E without a reload.
  await F.page.getByTestId('dm-toggle').click();
  await F.page.getByTestId('dm-email').fill('erin@example.com');
  await F.page.getByTestId('dm-submit').click();
  const direct = 'frank & erin';
  await roomItem(F.page, direct).waitFor();
  await send(F.page, 'A private word, Erin?');
  await roomItem(E.page, direct).waitFor();
  await roomItem(E.page, direct).click();
  await waitForMessage(E.page, 'A private word, Erin?');

  // F leaves the public room; it goes from F's list, and E's member count drops.
  await roomItem(F.page, 'Town square').click();
  await F.page.getByTestId('members-toggle').click();
  await F.page.getByTestId('leave-room').click();
  await roomItem(F.page, 'Town square').waitFor({ state: 'detached' });
  await roomItem(E.page, 'Town square').click();
  await eventually(async () =>
    assert.equal(await E.page.getByTestId('members-toggle').textContent(), '1 member'),
  );

  // The owner cannot leave without handing over: the error is shown.
  await E.page.getByTestId('members-toggle').click();
  await E.page.getByTestId('leave-room').click();
  await E.page.getByTestId('error').waitFor();
  assert.match(await E.page.getByTestId('error-text').textContent(), /owner/i);
  await E.page.getByTestId('error-dismiss').click();
  await E.page.getByTestId('error').waitFor({ state: 'hidden' });

  await assertNoError(F.page, 'F');
  await E.context.close();
  await F.context.close();
});
