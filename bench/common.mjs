// What both measurements share: accounts through the session API, and
// authenticated WebSockets.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import WebSocket from 'ws';

const PASSWORD = createHash('sha256').update('bench password').digest('hex');

/** Calls the REST API; resolves with the envelope's `data`. */
export async function call(base, method, path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(base + path, { method, headers, body: body && JSON.stringify(body) });
  const answer = await response.json();
  if (answer.status !== 'Success') throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer.data;
}

/** Registers and verifies a fresh account: `{id, token}`. */
export async function newUser(base, label) {
  const email = `${label}-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;
  const registered = await call(base, 'POST', '/session/register', { email, password: PASSWORD });
  const tokens = await call(base, 'GET', `/session/emailVerify?verifyToken=${registered.VerificationToken}`);
  const me = await call(base, 'GET', '/users/me', undefined, tokens.access_token);
  return { id: me.id, token: tokens.access_token };
}

/** An authenticated WebSocket (resolved at `ready`); `onFrame` gets the rest. */
export function connect(base, token, onFrame = () => {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data);
      if (frame.type === 'ready') resolve(ws);
      else onFrame(frame);
    });
    ws.on('error', reject);
  });
}

/** The resident memory of process `pid`, in KiB. */
export function rssKib(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
