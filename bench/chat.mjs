// Unread counts and search at scale: one user in 200 rooms of 10 members,
// 1,000,000 messages in those rooms (filled straight in the server's
// PostgreSQL database: bodies of words drawn from a skewed vocabulary, 1% of
// them mentioning the user, 1% deleted, the user's read markers a little
// behind each room's end), then times, one request at a time:
// - `GET /rooms`: the 200 rooms with their unread and mention counts (one
//   query for all the counts);
// - `GET /search/messages?q=`: a rare, a common and a two-word search;
// against `GET /users/me` (the same authentication, one row) as the
// reference of the same run, as absolute numbers on a shared machine drift.
//
//   node bench/chat.mjs http://127.0.0.1:8083 postgres://postgres@127.0.0.1/p_chat_chat 1000000 5 300
//
// Arguments: the server, its database (psql must reach it), messages,
// runs, requests per run and kind. Prints the medians over runs of each
// kind's p50 and p99, in milliseconds and as ratios to the reference.

import { execFileSync } from 'node:child_process';

import { call, newUser } from './common.mjs';

const [base, database, messagesArg = '1000000', runsArg = '5', requestsArg = '300'] = process.argv.slice(2);
const messages = Number(messagesArg);
const runs = Number(runsArg);
const requests = Number(requestsArg);
const ROOMS = 200;
const OTHERS = 9;
/** Words in the vocabulary; word `wN` is drawn with a skew towards small N. */
const VOCABULARY = 20000;
const WORDS_PER_BODY = 8;

const psql = (sql) => execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', database, '-c', sql], { stdio: ['ignore', 'ignore', 'inherit'] });

const me = await newUser(base, 'chat');
const others = [];
for (let i = 0; i < OTHERS; i += 1) others.push(await newUser(base, `peer${i}`));
const rooms = [];
for (let i = 0; i < ROOMS; i += 1) {
  const room = await call(base, 'POST', '/rooms', { name: `bench ${i}`, visibility: 'public' }, me.token);
  for (const other of others) await call(base, 'PUT', `/rooms/${room.id}/members/me`, undefined, other.token);
  rooms.push(room.id);
}
const authors = `ARRAY['${[me.id, ...others.map((o) => o.id)].join("','")}']::uuid[]`;
const perRoom = Math.floor(messages / ROOMS);
const filling = Date.now();
// Rows of a room's messages: seq g, a random author, a body of skewed words.
for (const room of rooms) {
  psql(`BEGIN;
    INSERT INTO messages (id, room_id, seq, author_id, body, created_at, mentions, deleted_at)
      SELECT gen_random_uuid(), '${room}', g,
             (${authors})[1 + floor(random() * ${OTHERS + 1})::int],
             CASE WHEN g % 100 = 7 THEN NULL ELSE (
               SELECT string_agg('w' || floor(power(random(), 3) * ${VOCABULARY})::int, ' ')
                 FROM generate_series(1, ${WORDS_PER_BODY}) WHERE g > 0) END,
             now() - make_interval(secs => ${perRoom} - g),
             CASE WHEN g % 100 = 3 THEN ARRAY['${me.id}']::uuid[] ELSE '{}' END,
             CASE WHEN g % 100 = 7 THEN now() END
        FROM generate_series(1, ${perRoom}) g;
    INSERT INTO message_mentions (user_id, room_id, seq, message_id)
      SELECT '${me.id}', room_id, seq, id FROM messages
       WHERE room_id = '${room}' AND seq % 100 = 3;
    UPDATE rooms SET last_seq = ${perRoom} WHERE id = '${room}';
    UPDATE room_members SET last_read_seq = ${perRoom} - floor(random() * 200)::int
     WHERE room_id = '${room}';
    COMMIT;`);
}
psql('ANALYZE messages; ANALYZE message_mentions; ANALYZE room_members;');
// The client's pooled connection sat idle through the fill, past the
// server's keep-alive: a first request that may fail opens a fresh one.
await call(base, 'GET', '/users/me', undefined, me.token).catch(() => {});
console.log(`filled ${perRoom * ROOMS} messages in ${ROOMS} rooms in ${((Date.now() - filling) / 1000).toFixed(1)} s`);

async function timed(path) {
  const started = process.hrtime.bigint();
  await call(base, 'GET', path, undefined, me.token);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const kinds = {
  reference: () => '/users/me',
  rooms: () => '/rooms',
  'search rare': () => `/search/messages?q=w${15000 + Math.floor(Math.random() * 5000)}`,
  'search common': () => `/search/messages?q=w${Math.floor(Math.random() * 20)}`,
  'search two words': () => `/search/messages?q=w${Math.floor(Math.random() * 200)}%20w${Math.floor(Math.random() * 200)}`,
};

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, { p50: [], p99: [] }]));

for (let run = 0; run < runs; run += 1) {
  for (const [kind, path] of Object.entries(kinds)) {
    const times = [];
    for (let i = 0; i < requests; i += 1) times.push(await timed(path()));
    times.sort((a, b) => a - b);
    results[kind].p50.push(quantile(times, 0.5));
    results[kind].p99.push(quantile(times, 0.99));
  }
}

const reference = results.reference;
console.log(`medians of ${runs} runs of ${requests} requests each (ms; ratio to GET /users/me)`);
for (const [kind, { p50, p99 }] of Object.entries(results)) {
  const line = [
    kind.padEnd(17),
    `p50 ${median(p50).toFixed(2)} (${(median(p50) / median(reference.p50)).toFixed(1)}x)`,
    `p99 ${median(p99).toFixed(2)} (${(median(p99) / median(reference.p99)).toFixed(1)}x)`,
    `p99 spread ${Math.min(...p99).toFixed(2)}..${Math.max(...p99).toFixed(2)}`,
  ];
  console.log(line.join('  '));
}
