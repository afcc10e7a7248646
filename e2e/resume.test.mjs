// End-to-end tests of the client's resume by position (docs/client.md): a
// user whose browser was offline sees, after it reconnects and without a
// reload, every change made meanwhile (edits, deletions, a rename, a removal
// from a room, a role change, a room new to it). What changed comes as room
// events replayed from the client's positions: the tests check that it did
// not read the history or the members again instead.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  RECONNECT_MS,
  apiAs,
  assertNoError,
  assertNotReloaded,
  eventually,
  goOffline,
  markPage,
  roomItem,
  send,
  shownMessages,
  useServer,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const { newUserPage, register } = useServer('resume');

/** The GET requests `page` makes for a room's history or members from now on. */
function recordRoomReads(page) {
  const reads = [];
  page.on('request', (request) => {
    const { pathname } = new URL(request.url());
    if (request.method() === 'GET' && /^\/rooms\/[^/]+\/(messages|members)$/.test(pathname)) {
      reads.push(pathname);
    }
  });
  return reads;
}

async function roomNamed(page, name) {
  const rooms = await apiAs(page, 'GET', '/rooms');
  const room = rooms.find((candidate) => candidate.name === name);
  assert.ok(room, `no room “${name}”`);
  return room;
}

test('edits, a deletion and a rename made while offline show after the reconnect, without a reload', { timeout: 100_000 }, async () => {
  const A = await newUserPage('A');
  const B = await newUserPage('B');
  await register(A.page, 'amy@example.com', 'amy password');
  await register(B.page, 'bill@example.com', 'bill password');
  await waitOnline(A.page);
  await waitOnline(B.page);

  // B creates a private room and adds A, who opens it.
  await B.page.getByTestId('new-room-toggle').click();
  await B.page.getByTestId('new-room-name').fill('Plans');
  await B.page.getByTestId('new-room-visibility').selectOption('private');
  await B.page.getByTestId('create-room').click();
  await B.page.locator('[data-testid="room-title"][data-room-name="Plans"]').waitFor();
  await B.page.getByTestId('members-toggle').click();
  await B.page.getByTestId('add-member-email').fill('amy@example.com');
  await B.page.getByTestId('add-member-submit').click();
  await B.page.getByTestId('member-list').getByText('amy').waitFor();
  await roomItem(A.page, 'Plans').click();

  // B writes three messages; A sees them.
  const bodies = ['the meeting is on Monday', 'this one was a mistake', 'bring the slides'];
  for (const body of bodies) {
    await send(B.page, body);
    await waitForMessage(B.page, body);
  }
  for (const body of bodies) await waitForMessage(A.page, body);
  const room = await roomNamed(B.page, 'Plans');
  const { messages } = await apiAs(B.page, 'GET', `/rooms/${room.id}/messages`);
  const idOf = (body) => messages.find((message) => message.body === body).id;

  // A goes offline; B edits one message, deletes another and renames the room.
  await markPage(A.page);
  const reads = recordRoomReads(A.page);
  await goOffline(A);
  const edited = 'the meeting moved to Tuesday';
  await apiAs(B.page, 'PATCH', `/rooms/${room.id}/messages/${idOf(bodies[0])}`, { body: edited });
  await apiAs(B.page, 'DELETE', `/rooms/${room.id}/messages/${idOf(bodies[1])}`);
  await apiAs(B.page, 'PATCH', `/rooms/${room.id}`, { name: 'Plans for Q3', topic: 'Dates and slides' });
  // B's own client shows its changes live.
  await B.page.locator('[data-testid="room-title"][data-room-name="Plans for Q3"]').waitFor();
  await waitForMessage(B.page, edited);
  assert.deepEqual(
    (await shownMessages(A.page)).map((message) => message.body),
    bodies,
    'A saw a change while offline',
  );
  assert.equal(await A.page.getByTestId('room-title').getAttribute('data-room-name'), 'Plans');

  // A comes back: its screen shows all three changes.
  await A.context.setOffline(false);
  await eventually(async () => {
    const shown = await shownMessages(A.page);
    assert.deepEqual(
      shown.map((message) => [message.body, message.state]),
      [
        [edited, '(edited)'],
        ['This message was deleted.', ''],
        [bodies[2], ''],
      ],
    );
    assert.equal(await A.page.getByTestId('room-title').getAttribute('data-room-name'), 'Plans for Q3');
    assert.equal(await roomItem(A.page, 'Plans for Q3').count(), 1);
    assert.equal(await roomItem(A.page, 'Plans').count(), 0);
    assert.match(await A.page.getByTestId('room-topic').textContent(), /^Dates and slides · owner: bill$/);
  }, RECONNECT_MS);
  await waitOnline(A.page);
  await assertNotReloaded(A.page, 'A');
  assert.deepEqual(reads, [], 'A read the room again instead of resuming from its position');

  // The room goes on live after the resume.
  await send(A.page, 'Tuesday works');
  await waitForMessage(B.page, 'Tuesday works');
  await assertNoError(A.page, 'A');
  await assertNoError(B.page, 'B');
  await A.context.close();
  await B.context.close();
});

test('a removal from a room, a role change and a new room made while offline show after the reconnect', { timeout: 100_000 }, async () => {
  const A = await newUserPage('A2');
  const B = await newUserPage('B2');
  const C = await newUserPage('C2');
  await register(A.page, 'ann@example.com', 'ann password');
  await register(B.page, 'ben@example.com', 'ben password');
  await register(C.page, 'cat@example.com', 'cat password');
  await waitOnline(A.page);
  const annId = (await apiAs(A.page, 'GET', '/users/me')).id;
  const benId = (await apiAs(B.page, 'GET', '/users/me')).id;

  // B owns "Secret" with A in it; C owns "Team" with A and B in it.
  const secret = await apiAs(B.page, 'POST', '/rooms', { name: 'Secret', visibility: 'private' });
  await apiAs(B.page, 'POST', `/rooms/${secret.id}/members`, { email: 'ann@example.com' });
  const team = await apiAs(C.page, 'POST', '/rooms', { name: 'Team', visibility: 'private' });
  await apiAs(C.page, 'POST', `/rooms/${team.id}/members`, { email: 'ann@example.com' });
  await apiAs(C.page, 'POST', `/rooms/${team.id}/members`, { email: 'ben@example.com' });

  // A has seen Team's members (ben is a plain member), and has Secret open.
  await roomItem(A.page, 'Team').click();
  await A.page.getByTestId('members-toggle').click();
  const ben = A.page.locator(`[data-testid="member"][data-user-id="${benId}"]`);
  await ben.waitFor();
  assert.equal(await ben.getAttribute('data-role'), 'member');
  await roomItem(A.page, 'Secret').click();
  await A.page.locator('[data-testid="room-title"][data-room-name="Secret"]').waitFor();

  // A goes offline; B removes A from Secret, C makes B an admin of Team and
  // puts A in a new room.
  await markPage(A.page);
  const reads = recordRoomReads(A.page);
  await goOffline(A);
  await apiAs(B.page, 'DELETE', `/rooms/${secret.id}/members/${annId}`);
  await apiAs(C.page, 'PATCH', `/rooms/${team.id}/members/${benId}`, { role: 'admin' });
  const fresh = await apiAs(C.page, 'POST', '/rooms', { name: 'Fresh', visibility: 'private' });
  await apiAs(C.page, 'POST', `/rooms/${fresh.id}/members`, { email: 'ann@example.com' });
  assert.equal(await roomItem(A.page, 'Secret').count(), 1, 'A saw the removal while offline');

  // A comes back: Secret is gone from the list and from the view, Fresh is there.
  await A.context.setOffline(false);
  await eventually(async () => {
    assert.equal(await roomItem(A.page, 'Secret').count(), 0);
    assert.equal(await A.page.locator('#room-pane').isVisible(), false);
    assert.equal(await roomItem(A.page, 'Fresh').count(), 1);
  }, RECONNECT_MS);
  await waitOnline(A.page);
  assert.match(await A.page.getByTestId('error-text').textContent(), /no longer a member of “Secret”/);
  await A.page.getByTestId('error-dismiss').click();

  // Team shows ben as an admin: from the role change's event, not a new read.
  await roomItem(A.page, 'Team').click();
  await A.page.getByTestId('members-toggle').click();
  await eventually(async () => assert.equal(await ben.getAttribute('data-role'), 'admin'));
  assert.match(await ben.textContent(), /admin/);
  assert.deepEqual(reads, [], 'A read Team again instead of resuming from its position');
  await assertNotReloaded(A.page, 'A');
  await assertNoError(A.page, 'A');
  await A.context.close();
  await B.context.close();
  await C.context.close();
});

test('a room whose events were pruned is read afresh, then synced from its new position', { timeout: 60_000 }, async () => {
  const A = await newUserPage('A3');
  const B = await newUserPage('B3');
  // A's WebSocket goes through the test, which can hold back the server's
  // events of the room (so that A misses some) and answer A's next sync of
  // it as a server does whose events after A's position were pruned.
  const route = { roomId: null, holdEvents: false, held: 0, pruned: false, syncs: [] };
  await A.context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((text) => {
      const frame = JSON.parse(text);
      if (route.holdEvents && frame.room_id === route.roomId && Number.isInteger(frame.pos)) {
        route.held += 1;
        return;
      }
      ws.send(text);
    });
    ws.onMessage((text) => {
      const frame = JSON.parse(text);
      if (frame.type === 'sync' && frame.room_id === route.roomId) {
        route.syncs.push(frame.after_pos);
        if (route.pruned) {
          route.pruned = false;
          ws.send(JSON.stringify({
            type: 'error',
            code: 'resync_required',
            message: 'the events after this position were pruned: reload the room',
            ref: frame.room_id,
          }));
          return;
        }
      }
      server.send(text);
    });
  });
  await register(A.page, 'ada@example.com', 'ada password');
  await register(B.page, 'bo@example.com', 'bo password');
  await waitOnline(A.page);
  await waitOnline(B.page);

  const room = await apiAs(B.page, 'POST', '/rooms', { name: 'Log', visibility: 'private' });
  await apiAs(B.page, 'POST', `/rooms/${room.id}/members`, { email: 'ada@example.com' });
  route.roomId = room.id;
  const first = await apiAs(B.page, 'POST', `/rooms/${room.id}/messages`, { body: 'first entry' });
  await roomItem(A.page, 'Log').click();
  await waitForMessage(A.page, 'first entry');

  // A misses an edit (its event is held back)...
  await markPage(A.page);
  route.holdEvents = true;
  await apiAs(B.page, 'PATCH', `/rooms/${room.id}/messages/${first.id}`, { body: 'first entry, corrected' });
  await eventually(() => assert.equal(route.held, 1));
  route.holdEvents = false;
  route.pruned = true;
  const reads = recordRoomReads(A.page);
  // ...so the next event is a gap: A syncs, is told its position is pruned,
  // reads the room afresh and syncs from the position it read.
  await apiAs(B.page, 'POST', `/rooms/${room.id}/messages`, { body: 'second entry' });
  await eventually(async () => {
    const shown = await shownMessages(A.page);
    assert.deepEqual(
      shown.map((message) => [message.body, message.state]),
      [
        ['first entry, corrected', '(edited)'],
        ['second entry', ''],
      ],
    );
  });
  const { last_pos: lastPos } = await apiAs(B.page, 'GET', `/rooms/${room.id}`);
  await eventually(() => assert.equal(route.syncs.at(-1), lastPos));
  assert.equal(route.syncs.length, 2, `A synced ${route.syncs.length} times (from ${route.syncs})`);
  assert.ok(route.syncs[0] < lastPos - 1, 'the first sync was not from before the held event');
  assert.deepEqual(reads.sort(), [`/rooms/${room.id}/members`, `/rooms/${room.id}/messages`]);
  await assertNotReloaded(A.page, 'A');
  await assertNoError(A.page, 'A');
  await A.context.close();
  await B.context.close();
});
