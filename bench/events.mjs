// Replay latency on a room with a long event log: fills one room of a
// running PostgreSQL-backed server with N messages (and their events)
// straight in its database, then times pages of 100 events read from random
// positions, over REST (`GET /rooms/{id}/events`) and over the WebSocket
// (`sync` to `synced`), one request at a time. A reference request measured
// in the same run (`GET /rooms/{id}`: the same authentication and room
// check, one row) gives the ratio, as absolute numbers on a shared machine
// drift from run to run.
//
//   node bench/events.mjs http://127.0.0.1:8082 postgres://postgres@127.0.0.1/p_chat_bench 1000000 5 500
//
// Arguments: the server, its database (psql must reach it), events in the
// room, runs, requests per run and kind. The `sync`s go faster than the
// default per-connection frame rate: start the server with a higher
// WS_RATE_PER_SECOND and WS_RATE_BURST (bench/README.md).

import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';

import { call, newUser } from './common.mjs';

const [base, database, eventsArg = '1000000', runsArg = '5', requestsArg = '500'] = process.argv.slice(2);
const events = Number(eventsArg);
const runs = Number(runsArg);
const requests = Number(requestsArg);
const PAGE = 100;
/** Rows inserted per statement while filling the room. */
const CHUNK = 100000;

const owner = await newUser(base, 'events');
const room = await call(base, 'POST', '/rooms', { name: `bench ${Date.now()}` }, owner.token);

// The room starts with its owner's member_joined at pos 1: message n gets pos n + 1.
const psql = (sql) => execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', database, '-c', sql], { stdio: ['ignore', 'ignore', 'inherit'] });
const filling = Date.now();
for (let from = 1; from <= events; from += CHUNK) {
  const to = Math.min(events, from + CHUNK - 1);
  psql(`BEGIN;
    INSERT INTO messages (id, room_id, seq, author_id, body, created_at)
      SELECT gen_random_uuid(), '${room.id}', g, '${owner.id}', 'bench message ' || g, now()
      FROM generate_series(${from}, ${to}) g;
    INSERT INTO room_events (room_id, pos, kind, at, message_id)
      SELECT room_id, seq + 1, 'message', created_at, id FROM messages
      WHERE room_id = '${room.id}' AND seq BETWEEN ${from} AND ${to};
    UPDATE rooms SET last_seq = ${to}, last_pos = ${to} + 1 WHERE id = '${room.id}';
    COMMIT;`);
}
psql('ANALYZE messages; ANALYZE room_events;');
console.log(`filled ${events} events in ${((Date.now() - filling) / 1000).toFixed(1)} s`);

const randomAfter = () => Math.floor(Math.random() * (events - PAGE));

async function timed(request) {
  const started = process.hrtime.bigint();
  await request();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

let finished = false;
const socket = await new Promise((resolve, reject) => {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { headers: { Authorization: `Bearer ${owner.token}` } });
  ws.on('message', (data) => {
    const frame = JSON.parse(data);
    if (frame.type === 'ready') resolve(ws);
    else ws.emit('frame', frame);
  });
  ws.on('error', reject);
});

/** One `sync` of a page: resolves at its `synced` frame, after its events. */
function syncPage(after) {
  return new Promise((resolve, reject) => {
    let received = 0;
    const onFrame = (frame) => {
      if (frame.type === 'message') received += 1;
      else if (frame.type === 'synced') {
        socket.off('frame', onFrame);
        if (received !== PAGE) reject(new Error(`sync replayed ${received} events`));
        else resolve();
      } else if (frame.type === 'error') reject(new Error(JSON.stringify(frame)));
    };
    socket.on('frame', onFrame);
    socket.send(JSON.stringify({ type: 'sync', room_id: room.id, after_pos: after, limit: PAGE }));
  });
}

const kinds = {
  reference: () => call(base, 'GET', `/rooms/${room.id}`, undefined, owner.token),
  rest: async () => {
    const page = await call(base, 'GET', `/rooms/${room.id}/events?after_pos=${randomAfter()}&limit=${PAGE}`, undefined, owner.token);
    if (page.events.length !== PAGE) throw new Error(`a page of ${page.events.length} events`);
  },
  ws: () => syncPage(randomAfter()),
};

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, { p50: [], p99: [] }]));
for (let run = 0; run < runs; run += 1) {
  // Interleaved, so that the machine's noise hits every kind alike.
  const samples = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, []]));
  for (let i = 0; i < requests; i += 1) {
    for (const [kind, request] of Object.entries(kinds)) samples[kind].push(await timed(request));
  }
  for (const [kind, values] of Object.entries(samples)) {
    values.sort((a, b) => a - b);
    results[kind].p50.push(percentile(values, 50));
    results[kind].p99.push(percentile(values, 99));
  }
}
finished = true;
socket.close();

console.log(`room of ${events} events, pages of ${PAGE}, ${runs} runs x ${requests} requests; medians over runs (ms):`);
for (const [kind, { p50, p99 }] of Object.entries(results)) {
  const ratio = kind === 'reference' ? '' : `  p99 ${(median(p99) / median(results.reference.p99)).toFixed(2)}x reference`;
  console.log(`  ${kind.padEnd(9)} p50 ${median(p50).toFixed(2)}  p99 ${median(p99).toFixed(2)}${ratio}`);
}
