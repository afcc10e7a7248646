// Delivery latency in one room: M members, each connected once and each
// sending its share of R messages per second for S seconds; every member's
// connection timestamps every `message` event it gets.
//
//   node bench/fanout.mjs http://127.0.0.1:8080 1000 5 100
//
// With a second node's base URL as a fifth argument, the room's members are
// split in two: the first half (the senders) connect to the first node and
// send every message, the second half (the receivers) connect to the second
// node and only listen, so every message they get has crossed from one node
// to the other. Both halves are reported, the receivers first. Giving the
// same URL twice measures the same split on one node, the reference:
//
//   node bench/fanout.mjs http://127.0.0.1:8083 1000 5 100 http://127.0.0.1:8084
//
// The server needs a rate limit above a member's share (WS_RATE_PER_SECOND,
// WS_RATE_BURST).

import { call, connect, newUser, sleep } from './common.mjs';

const [base, rateArg = '1000', secondsArg = '5', membersArg = '100', receiverBase] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const members = Number(membersArg);
const split = receiverBase !== undefined;

/** How long the receivers' node gets to subscribe to the room before the first message. */
const SUBSCRIBE_SETTLE_MS = 1000;

if (split && members < 2) {
  console.error('a split run needs at least 2 members: senders and receivers');
  process.exit(2);
}

const users = [];
while (users.length < members) {
  const batch = Math.min(10, members - users.length);
  users.push(...(await Promise.all(Array.from({ length: batch }, () => newUser(base, 'fanout')))));
}
const [owner] = users;
const room = await call(base, 'POST', '/rooms', { name: `bench ${Date.now()}`, visibility: 'private' }, owner.token);
for (const user of users.slice(1)) {
  await call(base, 'POST', `/rooms/${room.id}/members`, { user_id: user.id }, owner.token);
}

/** A frame handler that adds each `message` event's latency to `into`. */
const timing = (into) => (frame) => {
  if (frame.type === 'message') into.push(Date.now() - Number(frame.message.body));
};

const senderCount = split ? Math.ceil(members / 2) : members;
const senderLatencies = [];
const receiverLatencies = [];
const sockets = await Promise.all(users.slice(0, senderCount).map((user) => connect(base, user.token, timing(senderLatencies))));
const listeners = await Promise.all(
  users.slice(senderCount).map((user) => connect(receiverBase, user.token, timing(receiverLatencies))),
);
if (split) await sleep(SUBSCRIBE_SETTLE_MS);

const total = rate * seconds;
let sent = 0;
const started = Date.now();
while (sent < total) {
  const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * rate));
  for (; sent < due; sent += 1) {
    sockets[sent % sockets.length].send(
      JSON.stringify({ type: 'send', room_id: room.id, body: String(Date.now()), client_msg_id: `m${sent}` }),
    );
  }
  await sleep(5);
}
const expectedBySenders = total * sockets.length;
const expectedByReceivers = total * listeners.length;
const deadline = Date.now() + 15_000;
while (
  (senderLatencies.length < expectedBySenders || receiverLatencies.length < expectedByReceivers) &&
  Date.now() < deadline
) {
  await sleep(100);
}

/** Delivered count and latency percentiles of one set of connections. */
function summary(latencies, expected) {
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return `${latencies.length}/${expected} delivered; p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)} ms`;
}

if (split) {
  console.log(
    `${rate} messages/s for ${seconds} s to ${members} members, ${sockets.length} sending through ${base}, ` +
      `${listeners.length} listening on ${receiverBase}:\n` +
      `  receivers: ${summary(receiverLatencies, expectedByReceivers)}\n` +
      `  senders:   ${summary(senderLatencies, expectedBySenders)}`,
  );
} else {
  console.log(`${rate} messages/s for ${seconds} s to ${members} members: ${summary(senderLatencies, expectedBySenders)}`);
}
process.exit(0);
