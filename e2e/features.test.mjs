// End-to-end tests of the issue 13 features of the web client: replies,
// reactions, mentions and their badges, read markers shared by the devices
// of one user, room settings by role, search, message actions by keyboard
// and at phone width, links, day separators and groups, direct-room titles,
// notifications, and presence. Run from the workspace root:
// `node --test e2e/features.test.mjs` (see harness.mjs).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  OUT,
  apiAs,
  assertNoError,
  eventually,
  logIn,
  roomItem,
  send,
  shownMessages,
  useServer,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

/** How long after a user's last connection closes they go offline. */
const PRESENCE_GRACE_MS = 500;

const { newUserPage, register, open } = useServer('features', { PRESENCE_GRACE_MS: String(PRESENCE_GRACE_MS) });

/** The phone viewport the brief asks for. */
const PHONE = { width: 375, height: 740 };

/** The message shown with `body` (the open room). */
function messageNode(page, body) {
  return page.getByTestId('message').filter({ has: page.getByTestId('message-body').getByText(body, { exact: true }) });
}

async function createRoom(page, name, visibility = 'private') {
  await page.getByTestId('new-room-toggle').click();
  await page.getByTestId('new-room-name').fill(name);
  await page.getByTestId('new-room-visibility').selectOption(visibility);
  await page.getByTestId('create-room').click();
  await page.locator(`[data-testid="room-title"][data-room-name="${name}"]`).waitFor();
}

async function addMember(page, email, name) {
  await page.getByTestId('members-toggle').click();
  await page.getByTestId('add-member-email').fill(email);
  await page.getByTestId('add-member-submit').click();
  await page.getByTestId('member-list').getByText(name, { exact: true }).waitFor();
  await page.getByTestId('members-toggle').click();
}

/** The counts a room's entry in the list shows, as data attributes. */
async function badges(page, room) {
  const item = roomItem(page, room);
  return { unread: await item.getAttribute('data-unread'), mentions: await item.getAttribute('data-mentions') };
}

/** The reaction chip `emoji` of the message `body`: `{count, mine}`, or null. */
async function chip(page, body, emoji) {
  const found = messageNode(page, body).locator(`[data-testid="reaction"][data-emoji="${emoji}"]`);
  if ((await found.count()) === 0) return null;
  return { count: await found.getAttribute('data-count'), mine: await found.getAttribute('data-mine') };
}

test('replies, reactions, mentions, shared read markers, settings by role, links, groups and direct titles', { timeout: 120_000 }, async () => {
  const password = 'features password';
  const A1 = await newUserPage('A1');
  const B = await newUserPage('B');
  const C = await newUserPage('C');
  await register(A1.page, 'alice@example.com', password);
  await register(B.page, 'bob@example.com', password);
  await register(C.page, 'carol@example.com', password);
  // A second browser of alice.
  const A2 = await newUserPage('A2');
  await open(A2.page);
  await logIn(A2.page, 'alice@example.com', password);
  for (const user of [A1, A2, B, C]) await waitOnline(user.page);

  // Alice sets her display name (account panel).
  await A1.page.getByTestId('account-open').click();
  await A1.page.getByTestId('display-name').fill('Alice Liddell');
  await A1.page.getByTestId('display-name-submit').click();
  await A1.page.getByTestId('account-notice').getByText('Alice Liddell').waitFor();
  await A1.page.getByTestId('account-close').click();
  assert.equal(await A1.page.getByTestId('current-user').textContent(), 'Alice Liddell');

  // Alice makes a room with bob and carol.
  const room = 'Features';
  await createRoom(A1.page, room);
  await addMember(A1.page, 'bob@example.com', 'bob');
  await addMember(A1.page, 'carol@example.com', 'carol');
  await roomItem(B.page, room).click();
  await roomItem(C.page, room).click();

  // Links: http(s) only, opening safely; other schemes stay text.
  const linked = 'docs at https://example.com/docs?x=1. and javascript:alert(1) <b>not bold</b>';
  await send(B.page, linked);
  await waitForMessage(A1.page, linked);
  const link = messageNode(A1.page, linked).getByTestId('message-link');
  assert.equal(await link.count(), 1);
  assert.equal(await link.getAttribute('href'), 'https://example.com/docs?x=1');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
  assert.equal(await messageNode(A1.page, linked).locator('b').count(), 0, 'a body became HTML');

  // Groups: bob's second message within minutes continues his group; a day separator heads the day.
  const second = 'and a second line from bob';
  await send(B.page, second);
  await waitForMessage(A1.page, second);
  assert.match(await messageNode(A1.page, second).getAttribute('class'), /\bgrouped\b/);
  assert.doesNotMatch(await messageNode(A1.page, linked).getAttribute('class'), /\bgrouped\b/);
  assert.deepEqual(await A1.page.getByTestId('day-separator').allTextContents(), ['Today']);

  // Reply: alice answers bob's first message with the "⋯" actions; everyone sees the quote.
  await messageNode(A1.page, linked).getByTestId('message-actions').click();
  await messageNode(A1.page, linked).getByTestId('message-reply').click();
  await A1.page.getByTestId('reply-bar').getByText('Replying to bob').waitFor();
  const answer = 'Thanks, reading the docs now';
  await send(A1.page, answer);
  await waitForMessage(B.page, answer);
  assert.equal(await A1.page.getByTestId('reply-bar').isVisible(), false);
  await eventually(async () => {
    const quote = messageNode(B.page, answer).getByTestId('message-quote');
    assert.equal(await quote.getAttribute('data-state'), 'shown');
    assert.match(await quote.textContent(), /bob: docs at https:\/\/example\.com/);
  });

  // React: bob adds 👍 to alice's answer with the picker; alice sees it, joins it, bob takes his back.
  await messageNode(B.page, answer).hover();
  await messageNode(B.page, answer).getByTestId('message-react').click();
  await messageNode(B.page, answer).locator('[data-testid="reaction-option"][data-emoji="👍"]').click();
  await eventually(async () => assert.deepEqual(await chip(A1.page, answer, '👍'), { count: '1', mine: 'false' }));
  await messageNode(A1.page, answer).locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await eventually(async () => assert.deepEqual(await chip(B.page, answer, '👍'), { count: '2', mine: 'true' }));
  await messageNode(B.page, answer).locator('[data-testid="reaction"][data-emoji="👍"]').click();
  await eventually(async () => assert.deepEqual(await chip(A1.page, answer, '👍'), { count: '1', mine: 'true' }));
  await eventually(async () => assert.deepEqual(await chip(B.page, answer, '👍'), { count: '1', mine: 'false' }));

  // The deleted message a reply quotes shows as "deleted message".
  const doomed = 'a message bob will delete';
  await send(B.page, doomed);
  await waitForMessage(A1.page, doomed);
  await messageNode(A1.page, doomed).getByTestId('message-actions').click();
  await messageNode(A1.page, doomed).getByTestId('message-reply').click();
  const toDoomed = 'replying to what bob deletes';
  await send(A1.page, toDoomed);
  await waitForMessage(B.page, toDoomed);
  await messageNode(B.page, doomed).hover();
  await messageNode(B.page, doomed).getByTestId('message-delete').click();
  await eventually(async () => {
    const quote = messageNode(A1.page, toDoomed).getByTestId('message-quote');
    assert.equal(await quote.getAttribute('data-state'), 'deleted');
    assert.equal(await quote.textContent(), 'deleted message');
  });

  // Mention with badges: alice's two browsers look at another room; bob mentions her with `@`.
  await createRoom(A1.page, 'Elsewhere');
  await roomItem(A2.page, 'Elsewhere').click();
  await eventually(async () => assert.deepEqual(await badges(A2.page, room), { unread: '0', mentions: '0' }));
  const composer = B.page.getByTestId('composer');
  await composer.fill('');
  await composer.pressSequentially('ping @Ali', { delay: 10 });
  await B.page.getByTestId('mention-option').filter({ hasText: 'Alice Liddell' }).waitFor();
  await composer.press('Enter'); // picks the suggestion
  await composer.pressSequentially('are you there?', { delay: 5 });
  assert.equal(await composer.inputValue(), 'ping @Alice Liddell are you there?');
  await composer.press('Enter');
  const mention = 'ping @Alice Liddell are you there?';
  await waitForMessage(B.page, mention);
  // Both of alice's browsers show it unread, with a mention.
  for (const page of [A1.page, A2.page]) {
    await eventually(async () => assert.deepEqual(await badges(page, room), { unread: '1', mentions: '1' }));
  }
  // Carol was not mentioned: unread only (she has the room open, so it is read at once).
  // Alice reads it on A1: A2's badges clear too (read_marker), without a reload.
  await roomItem(A1.page, room).click();
  const shown = messageNode(A1.page, mention);
  await shown.waitFor();
  assert.equal(await shown.getAttribute('data-mentions-me'), 'true');
  assert.equal(await shown.locator('[data-testid="mention"]').textContent(), '@Alice Liddell');
  for (const page of [A1.page, A2.page]) {
    await eventually(async () => assert.deepEqual(await badges(page, room), { unread: '0', mentions: '0' }));
  }
  // The server agrees: the read marker is alice's, on every device.
  const listed = (await apiAs(A2.page, 'GET', '/rooms')).find((candidate) => candidate.name === room);
  assert.equal(listed.unread_count, 0);
  assert.equal(listed.mention_count, 0);
  // A1 has the room open: a new message there is read at once, on A2 too.
  const more = 'one more for the badge';
  await send(B.page, more);
  await waitForMessage(A1.page, more);
  await eventually(async () => assert.deepEqual(await badges(A2.page, room), { unread: '0', mentions: '0' }));
  await A1.page.screenshot({ path: join(OUT, 'features.png') });

  // Settings by role: carol (a plain member) sees no settings, no adding, no removing, no deleting others'.
  await C.page.getByTestId('members-toggle').click();
  await C.page.getByTestId('member-list').getByText('Alice Liddell', { exact: true }).waitFor();
  assert.equal(await C.page.getByTestId('room-settings-open').isVisible(), false);
  assert.equal(await C.page.getByTestId('add-member-email').isVisible(), false);
  assert.equal(await C.page.getByTestId('member-kick').count(), 0);
  assert.equal(await C.page.getByTestId('member-role').count(), 0);
  await messageNode(C.page, answer).hover();
  assert.equal(await messageNode(C.page, answer).getByTestId('message-delete').count(), 0);
  assert.equal(await messageNode(C.page, answer).getByTestId('message-edit').count(), 0);
  assert.equal(await messageNode(C.page, answer).getByTestId('message-reply').count(), 1);
  await C.page.getByTestId('members-toggle').click();

  // The owner renames the room and sets a topic in the settings panel; everyone sees it.
  await A1.page.getByTestId('room-settings-open').click();
  assert.equal(await A1.page.getByTestId('delete-room').isVisible(), true);
  await A1.page.getByTestId('settings-name').fill('Features 2');
  await A1.page.getByTestId('settings-topic').fill('All of issue 13');
  await A1.page.getByTestId('settings-save').click();
  await A1.page.getByTestId('room-settings').waitFor({ state: 'hidden' });
  await C.page.locator('[data-testid="room-title"][data-room-name="Features 2"]').waitFor();
  assert.match(await C.page.getByTestId('room-topic').textContent(), /All of issue 13/);

  // The owner makes bob an admin: bob gets the settings (without deletion) and may remove carol, not alice.
  await A1.page.getByTestId('members-toggle').click();
  const bobOnA = A1.page.locator('[data-testid="member"]').filter({ hasText: 'bob' });
  await bobOnA.getByTestId('member-role').click();
  await A1.page.locator('[data-testid="member"][data-role="admin"]').filter({ hasText: 'bob' }).waitFor();
  await A1.page.getByTestId('members-toggle').click();
  await B.page.getByTestId('room-settings-open').waitFor();
  await B.page.getByTestId('members-toggle').click();
  assert.equal(await B.page.getByTestId('add-member-email').isVisible(), true);
  const carolOnB = B.page.locator('[data-testid="member"]').filter({ hasText: 'carol' });
  const aliceOnB = B.page.locator('[data-testid="member"]').filter({ hasText: 'Alice Liddell' });
  assert.equal(await carolOnB.getByTestId('member-kick').count(), 1);
  assert.equal(await aliceOnB.getByTestId('member-kick').count(), 0);
  assert.equal(await B.page.getByTestId('member-role').count(), 0, 'only the owner changes roles');
  // An admin deletes other people's messages.
  await messageNode(B.page, answer).hover();
  assert.equal(await messageNode(B.page, answer).getByTestId('message-delete').count(), 1);
  // Bob removes carol: the room goes from carol's list.
  await carolOnB.getByTestId('member-kick').click();
  await roomItem(C.page, 'Features 2').waitFor({ state: 'detached' });
  await C.page.getByTestId('error-dismiss').click();
  await B.page.getByTestId('members-toggle').click();
  await B.page.getByTestId('room-settings-open').click();
  assert.equal(await B.page.getByTestId('delete-room').isVisible(), false, 'only the owner deletes the room');
  await B.page.getByTestId('room-settings-close').click();

  // A direct conversation is titled by the other person.
  await B.page.getByTestId('dm-toggle').click();
  await B.page.getByTestId('dm-email').fill('alice@example.com');
  await B.page.getByTestId('dm-submit').click();
  await B.page.locator('[data-testid="room-title"][data-title="Alice Liddell"]').waitFor();
  await eventually(async () =>
    assert.equal(await A1.page.locator('[data-testid="room-item"][data-title="bob"]').count(), 1),
  );

  // The owner deletes the room in the settings panel: it goes for bob too.
  await roomItem(A1.page, 'Features 2').click();
  await A1.page.getByTestId('room-settings-open').click();
  await A1.page.getByTestId('delete-room').click();
  await roomItem(A1.page, 'Features 2').waitFor({ state: 'detached' });
  await roomItem(B.page, 'Features 2').waitFor({ state: 'detached' });
  // Alice's other browser is told (it did not delete it itself).
  await roomItem(A2.page, 'Features 2').waitFor({ state: 'detached' });
  assert.match(await A2.page.getByTestId('error-text').textContent(), /“Features 2” was deleted/);
  await A2.page.getByTestId('error-dismiss').click();

  await assertNoError(A1.page, 'A1');
  await assertNoError(A2.page, 'A2');
  for (const user of [A1, A2, B, C]) await user.context.close();
});

test('search finds a message and opens its room there, with the history around it', { timeout: 60_000 }, async () => {
  const S = await newUserPage('S');
  await register(S.page, 'sam@example.com', 'sam password');
  await waitOnline(S.page);
  await createRoom(S.page, 'Archive', 'public');
  const total = 90;
  const target = 7;
  const rooms = await apiAs(S.page, 'GET', '/rooms');
  const archive = rooms.find((candidate) => candidate.name === 'Archive');
  for (let i = 1; i <= total; i += 1) {
    const body = i === target ? 'the zebra crossing plan' : `filler ${i}`;
    await apiAs(S.page, 'POST', `/rooms/${archive.id}/messages`, { body, client_msg_id: `seed-${i}` });
  }
  await waitForMessage(S.page, `filler ${total}`);
  await createRoom(S.page, 'Elsewhere');
  // A fresh start: the client knows no history of the room.
  await S.page.reload();
  await roomItem(S.page, 'Archive').waitFor();

  await S.page.getByTestId('search-input').fill('zebra');
  await S.page.getByTestId('search-submit').click();
  const result = S.page.getByTestId('search-result');
  await result.waitFor();
  assert.equal(await result.count(), 1);
  assert.equal(await result.getByTestId('search-snippet').locator('mark').textContent(), 'zebra');
  assert.equal(await result.getByTestId('search-snippet').textContent(), 'the zebra crossing plan');
  await result.click();

  await S.page.locator('[data-testid="room-title"][data-room-name="Archive"]').waitFor();
  const found = S.page.locator(`[data-testid="message"][data-seq="${target}"]`);
  await found.waitFor();
  assert.equal(await found.getAttribute('data-highlighted'), 'true');
  assert.ok(await found.isVisible());
  // The history from a little before it up to the newest is there, without a gap.
  const seqs = (await shownMessages(S.page)).map((message) => message.seq);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));
  await S.page.screenshot({ path: join(OUT, 'search.png') });
  await assertNoError(S.page, 'S');
  await S.context.close();
});

test('message actions work with the keyboard alone, and by tapping at phone width', { timeout: 60_000 }, async () => {
  const K = await newUserPage('K', { viewport: PHONE, isMobile: true, hasTouch: true });
  await register(K.page, 'kim@example.com', 'kim password');
  await waitOnline(K.page);
  await createRoom(K.page, 'Pocket');
  const first = 'first from the phone';
  await send(K.page, first);
  await waitForMessage(K.page, first);

  // Keyboard: focus the message, Enter opens its actions, Enter on "Reply" starts a reply.
  await messageNode(K.page, first).focus();
  await K.page.keyboard.press('Enter');
  assert.equal(await K.page.evaluate(() => document.activeElement?.dataset.testid), 'message-reply');
  await K.page.keyboard.press('Enter');
  await K.page.getByTestId('reply-bar').waitFor();
  assert.equal(await K.page.evaluate(() => document.activeElement?.dataset.testid), 'composer');
  await K.page.keyboard.type('a keyboard reply');
  await K.page.keyboard.press('Enter');
  await waitForMessage(K.page, 'a keyboard reply');
  assert.equal(await messageNode(K.page, 'a keyboard reply').getByTestId('message-quote').getAttribute('data-state'), 'shown');

  // Keyboard: React from the actions, then an emoji, all with Tab and Enter.
  await messageNode(K.page, first).focus();
  await K.page.keyboard.press('Enter'); // actions open on "Reply"
  await K.page.keyboard.press('Tab'); // "React"
  assert.equal(await K.page.evaluate(() => document.activeElement?.dataset.testid), 'message-react');
  await K.page.keyboard.press('Enter'); // the picker, on its first emoji
  assert.equal(await K.page.evaluate(() => document.activeElement?.dataset.testid), 'reaction-option');
  await K.page.keyboard.press('Enter');
  await eventually(async () => assert.deepEqual(await chip(K.page, first, '👍'), { count: '1', mine: 'true' }));
  // Escape closes the actions and returns to the message.
  await messageNode(K.page, first).focus();
  await K.page.keyboard.press('Enter');
  await K.page.keyboard.press('Escape');
  assert.equal(await K.page.evaluate(() => document.activeElement?.dataset.testid), 'message');

  // Tapping at 375 px: "⋯" shows the actions, "Edit" edits.
  const reply = messageNode(K.page, 'a keyboard reply');
  await reply.getByTestId('message-actions').tap();
  await reply.getByTestId('message-edit').tap();
  await K.page.getByTestId('edit-input').fill('an edited reply');
  await K.page.getByTestId('edit-save').tap();
  await waitForMessage(K.page, 'an edited reply');
  await messageNode(K.page, 'an edited reply').getByTestId('message-actions').tap();
  await messageNode(K.page, 'an edited reply').getByTestId('message-react').tap();
  await messageNode(K.page, 'an edited reply').locator('[data-testid="reaction-option"][data-emoji="🎉"]').tap();
  await eventually(async () => assert.deepEqual(await chip(K.page, 'an edited reply', '🎉'), { count: '1', mine: 'true' }));
  const overflow = await K.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, 'the page scrolls sideways');
  await K.page.screenshot({ path: join(OUT, 'phone-actions.png') });
  await assertNoError(K.page, 'K');
  await K.context.close();
});

test('browser notifications (opt-in) for mentions and direct messages while the tab is hidden', { timeout: 60_000 }, async () => {
  const N = await newUserPage('N');
  const M = await newUserPage('M');
  // A stand-in for the browser's notifications and a hidden tab, under the test's control.
  await N.context.addInitScript(() => {
    window.e2eNotes = [];
    window.e2eHidden = false;
    class FakeNotification {
      static permission = 'default';
      static async requestPermission() {
        FakeNotification.permission = 'granted';
        return 'granted';
      }
      constructor(title, options) {
        window.e2eNotes.push({ title, body: options?.body });
      }
      addEventListener() {}
      close() {}
    }
    window.Notification = FakeNotification;
    Object.defineProperty(Document.prototype, 'visibilityState', {
      get: () => (window.e2eHidden ? 'hidden' : 'visible'),
    });
  });
  await register(N.page, 'nora@example.com', 'nora password');
  await register(M.page, 'max@example.com', 'max password');
  await waitOnline(N.page);
  await waitOnline(M.page);
  await createRoom(N.page, 'Quiet');
  await addMember(N.page, 'max@example.com', 'max');
  await roomItem(M.page, 'Quiet').click();

  await N.page.getByTestId('notify-toggle').check();
  await N.page.evaluate(() => {
    window.e2eHidden = true;
  });
  const notes = () => N.page.evaluate(() => window.e2eNotes);
  // A message without a mention in a room: no notification.
  await send(M.page, 'just chatting');
  await waitForMessage(N.page, 'just chatting');
  // A mention: one.
  const composer = M.page.getByTestId('composer');
  await composer.pressSequentially('hey @no', { delay: 10 });
  await M.page.getByTestId('mention-option').first().click();
  await composer.pressSequentially('look', { delay: 5 });
  await composer.press('Enter');
  await eventually(async () => assert.deepEqual(await notes(), [{ title: 'max in Quiet', body: 'hey @nora look' }]));
  // The hidden tab did not mark them read.
  assert.deepEqual(await badges(N.page, 'Quiet'), { unread: '2', mentions: '1' });
  // Turned off: nothing more.
  await N.page.getByTestId('notify-toggle').uncheck();
  await send(M.page, 'hey @nora again, without a pick');
  await waitForMessage(M.page, 'hey @nora again, without a pick');
  await eventually(async () => assert.equal((await badges(N.page, 'Quiet')).unread, '3'));
  assert.equal((await notes()).length, 1);
  await assertNoError(N.page, 'N');
  await N.context.close();
  await M.context.close();
});

test('presence dots follow the other member online and offline', { timeout: 60_000 }, async () => {
  const P = await newUserPage('P');
  const Q = await newUserPage('Q');
  await register(P.page, 'pat@example.com', 'pat password');
  await register(Q.page, 'quinn@example.com', 'quinn password');
  await waitOnline(P.page);
  await waitOnline(Q.page);
  await createRoom(P.page, 'Lobby');
  await addMember(P.page, 'quinn@example.com', 'quinn');
  const quinn = await apiAs(Q.page, 'GET', '/users/me');
  assert.equal((await apiAs(P.page, 'GET', `/users/${quinn.id}`)).presence, 'online');
  await P.page.getByTestId('members-toggle').click();
  const dot = P.page.locator(`[data-testid="member"] [data-testid="presence"][data-user-id="${quinn.id}"]`);
  await eventually(async () => assert.equal(await dot.getAttribute('data-presence'), 'online'));
  // Quinn's only browser closes: offline once the grace period is over,
  // with when they were last seen.
  await Q.context.close();
  await eventually(async () => assert.equal(await dot.getAttribute('data-presence'), 'offline'), 30_000);
  assert.match(await dot.getAttribute('aria-label'), /^offline, last seen /);
  // Back in another browser: online again.
  const Q2 = await newUserPage('Q2');
  await open(Q2.page);
  await logIn(Q2.page, 'quinn@example.com', 'quinn password');
  await waitOnline(Q2.page);
  await eventually(async () => assert.equal(await dot.getAttribute('data-presence'), 'online'));
  await assertNoError(P.page, 'P');
  await P.context.close();
  await Q2.context.close();
});
