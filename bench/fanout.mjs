// Delivery latency in one room: M members, each connected once and each
// sending its share of R messages per second for S seconds; every member's
// connection timestamps every `message` event it gets.
//
//   node bench/fanout.mjs http://127.0.0.1:8080 1000 5 100
//
// The server needs a rate limit above a member's share (WS_RATE_PER_SECOND,
// WS_RATE_BURST).

import { call, connect, newUser, sleep } from './common.mjs';

const [base, rateArg = '1000', secondsArg = '5', membersArg = '100'] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const members = Number(membersArg);

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

const latencies = [];
const sockets = await Promise.all(
  users.map((user) =>
    connect(base, user.token, (frame) => {
      if (frame.type === 'message') latencies.push(Date.now() - Number(frame.message.body));
    }),
  ),
);

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
const expected = total * members;
const deadline = Date.now() + 15_000;
while (latencies.length < expected && Date.now() < deadline) await sleep(100);

latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
console.log(
  `${rate} messages/s for ${seconds} s to ${members} members: ${latencies.length}/${expected} delivered; ` +
    `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${latencies.at(-1)} ms`,
);
process.exit(0);
