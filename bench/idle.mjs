// Server memory per idle authenticated WebSocket: the growth of the server's
// RSS over N connections (after 100 warm-up connections).
//
//   node bench/idle.mjs http://127.0.0.1:8080 <server pid> 5000

import { connect, newUser, rssKib, sleep } from './common.mjs';

const [base, pid, countArg = '5000'] = process.argv.slice(2);
const count = Number(countArg);
const user = await newUser(base, 'idle');
const open = () => connect(base, user.token);

const sockets = [];
for (let i = 0; i < 100; i += 1) sockets.push(await open());
await sleep(1000);
const before = rssKib(pid);
for (let opened = 0; opened < count; opened += 100) {
  sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, count - opened) }, open))));
}
await sleep(2000);
const after = rssKib(pid);
console.log(`${count} idle WebSockets: server RSS ${before} -> ${after} KiB, ${((after - before) / count).toFixed(1)} KiB each`);
process.exit(0);
