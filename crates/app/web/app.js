// The p-chat browser client: plain DOM, no framework, no build step.
//
// - api.js: the login session (tokens in sessionStorage, refresh) and REST.
// - socket.js: the WebSocket (auth frame, own pings, reconnect with backoff).
// - this file: the state (rooms, messages, pending sends) and the UI.
//
// Messages: each room keeps its messages by seq (so a message seen twice,
// live and again by a sync, is kept once) and the highest seq seen. After
// every (re)connect the client `sync`s every room from that seq (again while
// `has_more`), as docs/protocol.md asks. Sends carry a client_msg_id and stay
// visibly pending until their `ack`; unacknowledged ones are sent again after
// a reconnect (the server stores a client_msg_id once).

import { setUpAccountPanels, showAdminEntry } from './account.js';
import { Session, newId, sha256Hex } from './api.js';
import { ChatSocket } from './socket.js';

const PAGE_SIZE = 50;
const MAX_BODY_CHARS = 4000;
const TYPING_SEND_EVERY_MS = 3_000;
const TYPING_SHOWN_MS = 5_000;
/** At most this many `sync` requests in flight (the server rate-limits frames). */
const SYNC_PARALLEL = 4;
const ACTIVE_ROOM_KEY = 'p-chat.active-room';

const $ = (id) => document.getElementById(id);

const ui = {
  loading: $('loading'),
  authView: $('auth-view'),
  authNotice: $('auth-notice'),
  chatView: $('chat-view'),
  errorBar: document.querySelector('[data-testid="error"]'),
  errorText: document.querySelector('[data-testid="error-text"]'),
  errorDismiss: document.querySelector('[data-testid="error-dismiss"]'),
  loginForm: $('login-form'),
  registerForm: $('register-form'),
  status: $('connection-status'),
  meAvatar: $('me-avatar'),
  meName: $('me-name'),
  logout: $('logout'),
  roomList: $('room-list'),
  roomsEmpty: $('rooms-empty'),
  newRoom: $('new-room'),
  newRoomForm: $('new-room-form'),
  newRoomName: $('new-room-name'),
  newRoomVisibility: $('new-room-visibility'),
  browse: $('browse'),
  browseForm: $('browse-form'),
  publicSearch: $('public-search'),
  publicRooms: $('public-rooms'),
  dm: $('dm'),
  dmForm: $('dm-form'),
  dmEmail: $('dm-email'),
  placeholder: $('room-placeholder'),
  pane: $('room-pane'),
  back: $('back'),
  roomTitle: $('room-title'),
  roomTopic: $('room-topic'),
  members: $('members'),
  membersCount: $('members-count'),
  memberList: $('member-list'),
  addMemberForm: $('add-member-form'),
  addMemberEmail: $('add-member-email'),
  leaveRoom: $('leave-room'),
  scroller: $('message-scroller'),
  loadOlder: $('load-older'),
  historyStart: $('history-start'),
  messageList: $('message-list'),
  messageTemplate: $('message-template'),
  typing: $('typing'),
  composerForm: $('composer-form'),
  composer: $('composer'),
};

// ---------------------------------------------------------------- errors

/** Shows an error in the error area until dismissed (and logs it). */
function showError(error) {
  const message =
    typeof error === 'string' ? error : (error?.message ?? String(error ?? 'Unknown error'));
  console.warn('p-chat:', message);
  ui.errorText.textContent = message;
  ui.errorBar.hidden = false;
}

function clearError() {
  ui.errorBar.hidden = true;
  ui.errorText.textContent = '';
}

ui.errorDismiss.addEventListener('click', clearError);
window.addEventListener('unhandledrejection', (event) => showError(event.reason));
window.addEventListener('error', (event) => showError(event.error ?? event.message));

/** Wraps an event handler: errors go to the error area, never nowhere. */
function guarded(handler) {
  return async (event) => {
    try {
      await handler(event);
    } catch (error) {
      showError(error);
    }
  };
}

/** Runs a form's action with its submit button disabled meanwhile. */
function formHandler(form, action) {
  form.addEventListener(
    'submit',
    guarded(async (event) => {
      event.preventDefault();
      const buttons = form.querySelectorAll('button');
      buttons.forEach((button) => (button.disabled = true));
      try {
        await action();
      } finally {
        buttons.forEach((button) => (button.disabled = false));
      }
    }),
  );
}

// ---------------------------------------------------------------- state

const state = {
  /** `{id, email, display_name}` of the logged-in user. */
  me: null,
  /** room id → RoomState, in list order. */
  rooms: new Map(),
  activeId: null,
  /** client_msg_id → `{client_msg_id, room_id, body, created_at, failed, error}` */
  outbox: new Map(),
  /** room id → the highest seq this user has seen (for unread counts). */
  read: {},
  /** room id → Map(user id → until when they are shown as typing). */
  typing: new Map(),
  /** `{roomId, seq}` of the message being edited. */
  editing: null,
  /** Rooms this client is leaving (their member_left is expected). */
  leaving: new Set(),
  /** Sync bookkeeping for the current connection. */
  syncQueue: [],
  syncing: new Set(),
  lastTypingSent: 0,
};

/** A room with what this client knows of it. */
function roomState(room) {
  return {
    room,
    /**
     * The seq the next sync starts after: the highest seq delivered in order
     * (room list, newest history page, live or sync; see storeMessage).
     */
    lastSeq: room.last_seq ?? 0,
    /** seq → message; one entry per (room, seq). */
    messages: new Map(),
    /** The newest page of history is here (the room was opened). */
    loaded: false,
    loading: null,
    hasMoreBefore: false,
    loadingOlder: null,
    /** user id → member, or null until fetched. */
    members: null,
    membersLoading: null,
  };
}

let socket = null;

const session = new Session({
  onTokens: (tokens) => socket?.reauthenticate(tokens.access_token),
  onEnded: () => signedOut('You were signed out (on another device, or by an administrator). Log in again.'),
  onError: (error) => showError(`Could not renew the login: ${error.message}`),
});

const api = (method, path, body) => session.request(method, path, body);

// ---------------------------------------------------------------- views

function showView(name) {
  ui.loading.hidden = name !== 'loading';
  ui.authView.hidden = name !== 'auth';
  $('reset-view').hidden = name !== 'reset';
  ui.chatView.hidden = name !== 'chat';
}

/** Tells the logged-out user something that is not an error. */
function showNotice(text) {
  ui.authNotice.textContent = text;
  ui.authNotice.hidden = false;
}

/**
 * The token `name` of a link (`/?verifyToken=...`, `?resetToken=`,
 * `?invite=`), taken out of the address bar so that a reload or a shared URL
 * does not carry it.
 */
function takeLinkToken(name) {
  const url = new URL(window.location.href);
  const token = url.searchParams.get(name);
  if (token === null) return null;
  url.searchParams.delete(name);
  history.replaceState(null, '', url);
  return token;
}

/** The reset token of the password-reset link this page was opened with. */
let resetToken = null;

async function boot() {
  const invite = takeLinkToken('invite');
  if (invite !== null) {
    $('register-invite').value = invite;
    showNotice('You were invited: create your account below.');
  }
  resetToken = takeLinkToken('resetToken');
  if (resetToken !== null) {
    showView('reset');
    $('reset-password').focus();
    return;
  }
  const verifyToken = takeLinkToken('verifyToken');
  if (verifyToken !== null) {
    showView('auth');
    try {
      session.set(await Session.verify(verifyToken));
    } catch (error) {
      if (error.status !== 401) throw error;
      throw new Error('This verification link is invalid, used or expired: log in, or register again.');
    }
    await enterChat();
    return;
  }
  if (session.loggedIn) {
    session.schedule();
    await enterChat();
  } else {
    showView('auth');
    $('login-email').focus();
  }
}

async function enterChat() {
  showView('loading');
  try {
    state.me = await api('GET', '/users/me');
  } catch (error) {
    if (!session.loggedIn) return; // the session ended: onEnded has switched views
    showView('auth');
    throw error;
  }
  ui.meName.textContent = state.me.display_name;
  ui.meName.title = state.me.email;
  ui.meAvatar.textContent = initial(state.me.display_name);
  ui.meAvatar.className = `avatar ${hueClass(state.me.id)}`;
  showAdminEntry(state.me);
  state.read = loadRead();
  restoreOutbox();
  try {
    await loadRooms();
  } catch (error) {
    if (!session.loggedIn) return;
    showError(error); // the socket's `ready` loads them again
  }
  showView('chat');
  socket = new ChatSocket({
    getToken: () => session.accessToken(),
    onReady: () => resync(),
    onFrame: (frame) => handleFrame(frame),
    onStatus: renderStatus,
    onAuthExpired: async () => {
      await session.refresh();
    },
    onError: showError,
  });
  socket.start();
  const saved = sessionStorage.getItem(ACTIVE_ROOM_KEY);
  if (saved && state.rooms.has(saved)) {
    await openRoom(saved);
  } else {
    (ui.roomList.querySelector('button') ?? ui.newRoom.querySelector('summary')).focus();
  }
}

/** Back to the login page with `text` told (the session ended elsewhere). */
function signedOut(text) {
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  leaveChat();
  showNotice(text);
}

/** Back to the login page: stops the socket and forgets everything. */
function leaveChat() {
  socket?.stop();
  socket = null;
  session.clear();
  state.me = null;
  state.rooms.clear();
  state.outbox.clear();
  state.typing.clear();
  state.activeId = null;
  state.editing = null;
  state.syncQueue = [];
  state.syncing.clear();
  sessionStorage.removeItem(ACTIVE_ROOM_KEY);
  resetMessageNodes();
  ui.roomList.replaceChildren();
  ui.publicRooms.replaceChildren();
  ui.chatView.classList.remove('show-room');
  showView('auth');
  $('login-email').focus();
}

// ---------------------------------------------------------------- login

function readCredentials(form, minLength) {
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new Error('Enter a valid email address.');
  if (password.length < minLength) {
    throw new Error(
      minLength > 1 ? `The password needs at least ${minLength} characters.` : 'Enter your password.',
    );
  }
  return { email, password };
}

formHandler(ui.registerForm, async () => {
  const { email, password } = readCredentials(ui.registerForm, 8);
  const hash = await sha256Hex(password);
  const invite = ui.registerForm.elements.invite.value.trim();
  let registered;
  try {
    registered = await Session.register(email, hash, invite);
  } catch (error) {
    if (error.status === 409) throw new Error('This email is already registered: log in instead.');
    if (error.code === 'invite_invalid') {
      throw new Error('This server is invite-only: enter a valid invitation code (it may be used up or expired).');
    }
    if (error.code === 'registration_closed') {
      throw new Error('Registration is closed on this server: ask its administrator for an account.');
    }
    throw error;
  }
  ui.registerForm.reset();
  clearError();
  // Without SMTP, the register answer carries the verification
  // token, and verifying it logs the user in. A server that mails the token
  // instead (its link opens this page with `?verifyToken=`) answers without it.
  if (!registered?.VerificationToken) {
    showNotice(`Almost there: we sent a verification email to ${email}. Follow its link, then log in.`);
    return;
  }
  session.set(await Session.verify(registered.VerificationToken));
  await enterChat();
});

formHandler(ui.loginForm, async () => {
  const { email, password } = readCredentials(ui.loginForm, 1);
  const hash = await sha256Hex(password);
  let tokens;
  try {
    tokens = await Session.authorize(email, hash);
  } catch (error) {
    if (error.status === 401) {
      throw new Error('Wrong email or password (or the email is not verified yet).');
    }
    throw error;
  }
  ui.loginForm.reset();
  clearError();
  session.set(tokens);
  await enterChat();
});

/** The recovery buttons: a mail to the address in the login form's email field. */
for (const [id, kind, told] of [
  ['forgot-password', 'forgotPassword', 'a password reset link'],
  ['resend-verification', 'resendVerification', 'a new verification link'],
]) {
  $(id).addEventListener(
    'click',
    guarded(async () => {
      const email = ui.loginForm.elements.email.value.trim();
      if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
        throw new Error('Enter your email address in the field above first.');
      }
      await Session.mailMe(kind, email);
      clearError();
      showNotice(`If ${email} has an account, we sent it ${told}. Check your mail.`);
    }),
  );
}

const resetForm = $('reset-form');
formHandler(resetForm, async () => {
  const password = resetForm.elements.password.value;
  if (password.length < 8) throw new Error('The password needs at least 8 characters.');
  if (password !== resetForm.elements.confirm.value) throw new Error('The two passwords differ.');
  try {
    await Session.resetPassword(resetToken, await sha256Hex(password));
  } catch (error) {
    if (error.status !== 401) throw error;
    throw new Error('This reset link is invalid, used or expired: ask for a new one from the login page.');
  }
  resetToken = null;
  resetForm.reset();
  clearError();
  showView('auth');
  showNotice('Your password was changed and every device signed out: log in with the new one.');
  $('login-email').focus();
});

setUpAccountPanels({
  api,
  me: () => state.me,
  guarded,
  formHandler,
  signedOut: (text) => signedOut(text),
});

ui.logout.addEventListener(
  'click',
  guarded(async () => {
    let failure = null;
    try {
      await session.logout();
    } catch (error) {
      failure = error;
    }
    sessionStorage.removeItem(outboxKey());
    leaveChat();
    if (failure) {
      showError(`Logged out here, but the server could not be told: ${failure.message}`);
    }
  }),
);

// ---------------------------------------------------------------- connection

const STATUS_TEXT = {
  connecting: 'Connecting…',
  online: 'Online',
  stopped: 'Offline',
};

function renderStatus(connection, detail) {
  ui.status.dataset.state = connection;
  ui.status.textContent =
    connection === 'reconnecting'
      ? `Offline, retrying in ${Math.max(1, Math.round(detail.delay / 1000))} s`
      : STATUS_TEXT[connection];
}

/** After `ready` on a new connection: catch up on everything missed. */
function resync() {
  // Sync from the seq seen *now*, before any live message of this connection
  // moves it on (live delivery starts at `ready`; what came before is synced).
  state.syncing.clear();
  state.syncQueue = [...state.rooms.values()].map((rs) => ({
    roomId: rs.room.id,
    after: rs.lastSeq,
  }));
  pumpSync();
  flushOutbox();
  // Rooms joined or left while away, and fresh names and seqs.
  inBackground(loadRooms);
  const activeId = state.activeId;
  if (activeId) inBackground(() => loadMembers(activeId, true));
}

/**
 * A request made on the client's own initiative (after a reconnect). A
 * network failure usually means the connection is going down too: the status
 * shows it and the next `ready` does the work again. So it is tried once more
 * a little later if the socket is still up then, and shown if it fails again.
 * Any other failure is shown at once.
 */
function inBackground(task, retried = false) {
  task().catch((error) => {
    if (error?.status === 0 && !retried) {
      setTimeout(() => {
        if (socket?.ready) inBackground(task, true);
      }, 5_000);
    } else {
      showError(error);
    }
  });
}

function pumpSync() {
  while (state.syncing.size < SYNC_PARALLEL && state.syncQueue.length > 0) {
    const next = state.syncQueue[0];
    if (!state.rooms.has(next.roomId) || state.syncing.has(next.roomId)) {
      state.syncQueue.shift();
      continue;
    }
    const sent = socket?.send({ type: 'sync', room_id: next.roomId, after_seq: next.after });
    if (!sent) return; // disconnected: the next `ready` starts over
    state.syncQueue.shift();
    state.syncing.add(next.roomId);
  }
}

function onSynced(frame) {
  state.syncing.delete(frame.room_id);
  if (frame.has_more) state.syncQueue.unshift({ roomId: frame.room_id, after: frame.last_seq });
  pumpSync();
}

function handleFrame(frame) {
  switch (frame.type) {
    case 'message':
      addMessage(frame.room_id, frame.message);
      break;
    case 'message_updated':
    case 'message_deleted':
      replaceMessage(frame.room_id, frame.message);
      break;
    case 'ack':
      onAck(frame);
      break;
    case 'synced':
      onSynced(frame);
      break;
    case 'member_joined':
      onMemberJoined(frame);
      break;
    case 'member_left':
      onMemberLeft(frame);
      break;
    case 'room_updated':
      upsertRoom(frame.room);
      renderRoomList();
      if (frame.room_id === state.activeId) renderHeader();
      break;
    case 'room_deleted': {
      const name = state.rooms.get(frame.room_id)?.room.name;
      if (removeRoom(frame.room_id) && name !== undefined) {
        showError(`The room “${name}” was deleted.`);
      }
      break;
    }
    case 'typing':
      onTyping(frame.room_id, frame.user_id);
      break;
    case 'error':
      onSocketError(frame);
      break;
    default:
      // A newer server's event this client does not know: nothing to show.
      break;
  }
}

function onSocketError(frame) {
  const pending = frame.ref ? state.outbox.get(frame.ref) : undefined;
  if (pending) {
    pending.failed = true;
    pending.error = frame.message;
    saveOutbox();
    if (pending.room_id === state.activeId) renderMessages();
    showError(`Message not sent: ${frame.message}`);
    return;
  }
  if (frame.ref && state.syncing.has(frame.ref)) {
    state.syncing.delete(frame.ref);
    pumpSync();
    if (frame.code === 'room_not_found') {
      removeRoom(frame.ref);
      return;
    }
  }
  showError(`${frame.message} (${frame.code})`);
}

// ---------------------------------------------------------------- rooms

async function loadRooms() {
  const rooms = await api('GET', '/rooms');
  const ids = new Set(rooms.map((room) => room.id));
  for (const id of [...state.rooms.keys()]) {
    if (!ids.has(id)) removeRoom(id);
  }
  rooms.forEach(upsertRoom);
  renderRoomList();
}

let roomsReload = null;
/** Reloads the room list soon (an event for a room not known yet). */
function reloadRoomsSoon() {
  if (roomsReload) return;
  roomsReload = setTimeout(() => {
    roomsReload = null;
    if (state.me) loadRooms().catch(showError);
  }, 300);
}

function upsertRoom(room) {
  const rs = state.rooms.get(room.id);
  if (!rs) {
    state.rooms.set(room.id, roomState(room));
    return;
  }
  rs.room = room;
  // An opened room's seq comes from the messages it holds (so that a sync
  // from it leaves no gap); another room's only counts unread messages.
  if (!rs.loaded) rs.lastSeq = Math.max(rs.lastSeq, room.last_seq ?? 0);
}

/** Forgets a room; true if it was known. */
function removeRoom(id) {
  if (!state.rooms.delete(id)) return false;
  state.typing.delete(id);
  state.leaving.delete(id);
  if (state.activeId === id) closeRoom();
  renderRoomList();
  return true;
}

function onMemberJoined(frame) {
  if (frame.member.user_id === state.me?.id) {
    const known = state.rooms.has(frame.room_id);
    upsertRoom(frame.room);
    if (!known) renderRoomList();
    return;
  }
  const rs = state.rooms.get(frame.room_id);
  if (!rs) return;
  if (rs.members) rs.members.set(frame.member.user_id, frame.member);
  if (frame.room_id === state.activeId) {
    renderHeader();
    renderMessages();
  }
}

function onMemberLeft(frame) {
  if (frame.user_id === state.me?.id) {
    const name = state.rooms.get(frame.room_id)?.room.name;
    const expected = state.leaving.has(frame.room_id);
    if (removeRoom(frame.room_id) && !expected) {
      showError(`You are no longer a member of “${name}”.`);
    }
    return;
  }
  const rs = state.rooms.get(frame.room_id);
  if (!rs?.members) return;
  rs.members.delete(frame.user_id);
  if (frame.room_id === state.activeId) renderHeader();
}

function unread(rs) {
  return Math.max(0, rs.lastSeq - (state.read[rs.room.id] ?? 0));
}

/** The icon of a room's visibility: `#`, a padlock (drawn in CSS) or `@`. */
function roomIcon(visibility) {
  const icon = document.createElement('span');
  icon.className = `room-icon ${visibility}`;
  icon.setAttribute('aria-hidden', 'true');
  icon.textContent = { public: '#', direct: '@' }[visibility] ?? '';
  return icon;
}

function renderRoomList() {
  const focusedId = document.activeElement?.closest?.('.room-item')?.dataset.roomId;
  const items = [...state.rooms.values()].map((rs) => {
    const { room } = rs;
    const count = unread(rs);
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room-item';
    button.dataset.testid = 'room-item';
    button.dataset.roomId = room.id;
    button.dataset.roomName = room.name;
    button.dataset.unread = String(count);
    if (room.id === state.activeId) button.setAttribute('aria-current', 'true');
    const icon = roomIcon(room.visibility);
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = room.name;
    button.append(icon, name);
    if (count > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.dataset.testid = 'unread-count';
      badge.textContent = count > 99 ? '99+' : String(count);
      badge.setAttribute('aria-label', `${count} unread`);
      button.append(badge);
    }
    button.addEventListener('click', guarded(() => openRoom(room.id)));
    const li = document.createElement('li');
    li.append(button);
    return li;
  });
  ui.roomList.replaceChildren(...items);
  ui.roomsEmpty.hidden = items.length > 0;
  if (focusedId) ui.roomList.querySelector(`[data-room-id="${focusedId}"]`)?.focus();
  const total = [...state.rooms.values()].reduce((sum, rs) => sum + unread(rs), 0);
  document.title = total > 0 ? `(${total}) p-chat` : 'p-chat';
}

formHandler(ui.newRoomForm, async () => {
  const name = ui.newRoomName.value.trim();
  if (!name) throw new Error('Give the room a name.');
  const room = await api('POST', '/rooms', { name, visibility: ui.newRoomVisibility.value });
  upsertRoom(room);
  renderRoomList();
  ui.newRoomForm.reset();
  ui.newRoom.open = false;
  await openRoom(room.id);
});

formHandler(ui.browseForm, async () => {
  const q = ui.publicSearch.value.trim();
  const rooms = await api('GET', `/rooms/public?q=${encodeURIComponent(q)}`);
  const items = rooms.map((room) => {
    const li = document.createElement('li');
    li.className = 'public-room';
    li.dataset.testid = 'public-room';
    li.dataset.roomName = room.name;
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = room.name;
    const button = document.createElement('button');
    button.type = 'button';
    const joined = state.rooms.has(room.id);
    button.dataset.testid = 'join-room';
    button.textContent = joined ? 'Open' : 'Join';
    button.setAttribute('aria-label', `${joined ? 'Open' : 'Join'} ${room.name}`);
    button.addEventListener(
      'click',
      guarded(async () => {
        if (!state.rooms.has(room.id)) {
          await api('PUT', `/rooms/${room.id}/members/me`);
          upsertRoom(room);
          renderRoomList();
        }
        ui.browse.open = false;
        await openRoom(room.id);
      }),
    );
    li.append(name, button);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted small';
    li.textContent = q ? `No public room matches “${q}”.` : 'No public rooms yet.';
    items.push(li);
  }
  ui.publicRooms.replaceChildren(...items);
});

formHandler(ui.dmForm, async () => {
  const email = ui.dmEmail.value.trim();
  if (!email) throw new Error('Enter the email of the person to write to.');
  const room = await api('POST', '/dms', { email });
  upsertRoom(room);
  renderRoomList();
  ui.dmForm.reset();
  ui.dm.open = false;
  await openRoom(room.id);
});

formHandler(ui.addMemberForm, async () => {
  const roomId = state.activeId;
  const email = ui.addMemberEmail.value.trim();
  if (!roomId || !email) throw new Error('Enter the email of the person to add.');
  const member = await api('POST', `/rooms/${roomId}/members`, { email });
  const rs = state.rooms.get(roomId);
  rs?.members?.set(member.user_id, member);
  ui.addMemberForm.reset();
  if (roomId === state.activeId) renderHeader();
});

ui.leaveRoom.addEventListener(
  'click',
  guarded(async () => {
    const roomId = state.activeId;
    const rs = state.rooms.get(roomId);
    if (!rs || !window.confirm(`Leave “${rs.room.name}”?`)) return;
    state.leaving.add(roomId);
    try {
      await api('DELETE', `/rooms/${roomId}/members/me`);
    } catch (error) {
      state.leaving.delete(roomId);
      throw error;
    }
    removeRoom(roomId);
  }),
);

// ---------------------------------------------------------------- members

/** Fetches a room's members (cached; `force` fetches again). */
function loadMembers(roomId, force = false) {
  const rs = state.rooms.get(roomId);
  if (!rs) return Promise.resolve();
  if (rs.membersLoading) return rs.membersLoading;
  if (rs.members && !force) return Promise.resolve();
  rs.membersLoading = (async () => {
    try {
      const members = await api('GET', `/rooms/${roomId}/members`);
      rs.members = new Map(members.map((member) => [member.user_id, member]));
    } finally {
      rs.membersLoading = null;
    }
    if (roomId === state.activeId) {
      renderHeader();
      renderMessages();
    }
  })();
  return rs.membersLoading;
}

function displayName(rs, userId) {
  const member = rs.members?.get(userId);
  if (member) return member.display_name;
  if (userId === state.me?.id) return state.me.display_name;
  return rs.members ? 'former member' : '…';
}

// ---------------------------------------------------------------- the open room

async function openRoom(id) {
  const rs = state.rooms.get(id);
  if (!rs) return;
  if (state.activeId !== id) {
    state.activeId = id;
    state.editing = null;
    resetMessageNodes();
    ui.composer.value = '';
  }
  sessionStorage.setItem(ACTIVE_ROOM_KEY, id);
  ui.placeholder.hidden = true;
  ui.pane.hidden = false;
  ui.chatView.classList.add('show-room');
  ui.members.open = false;
  renderRoomList();
  renderHeader();
  renderMessages({ toBottom: true });
  renderTyping();
  ui.composer.focus();
  const loads = [loadMembers(id)];
  if (!rs.loaded) loads.push(loadLatest(rs));
  const results = await Promise.allSettled(loads);
  if (state.activeId !== id) return;
  renderMessages({ toBottom: true });
  markActiveRead();
  for (const result of results) {
    if (result.status === 'rejected') throw result.reason;
  }
}

function closeRoom() {
  state.activeId = null;
  state.editing = null;
  sessionStorage.removeItem(ACTIVE_ROOM_KEY);
  resetMessageNodes();
  ui.pane.hidden = true;
  ui.placeholder.hidden = false;
  ui.chatView.classList.remove('show-room');
  renderRoomList();
}

ui.back.addEventListener('click', () => {
  const id = state.activeId;
  closeRoom();
  if (id) ui.roomList.querySelector(`[data-room-id="${id}"]`)?.focus();
});

function renderHeader() {
  const rs = state.rooms.get(state.activeId);
  if (!rs) return;
  const { room } = rs;
  const title = document.createElement('span');
  title.textContent = room.name;
  ui.roomTitle.replaceChildren(roomIcon(room.visibility), title);
  ui.roomTitle.dataset.roomName = room.name;
  ui.roomTopic.textContent =
    room.topic ?? { public: 'Public room', private: 'Private room', direct: 'Direct conversation' }[room.visibility];
  const members = rs.members ? [...rs.members.values()] : [];
  ui.membersCount.textContent = rs.members
    ? `${members.length} member${members.length === 1 ? '' : 's'}`
    : 'Members';
  ui.memberList.replaceChildren(
    ...members.map((member) => {
      const li = document.createElement('li');
      const avatar = document.createElement('span');
      avatar.className = `avatar small ${hueClass(member.user_id)}`;
      avatar.setAttribute('aria-hidden', 'true');
      avatar.textContent = initial(member.display_name);
      const name = document.createElement('span');
      name.textContent = member.user_id === state.me?.id ? `${member.display_name} (you)` : member.display_name;
      li.append(avatar, name);
      if (member.role !== 'member') {
        const role = document.createElement('span');
        role.className = 'role';
        role.textContent = member.role;
        li.append(role);
      }
      return li;
    }),
  );
  // Nobody can be added to a direct conversation.
  ui.addMemberForm.hidden = room.visibility === 'direct';
}

/** Loads the newest page of a room's history (once). */
function loadLatest(rs) {
  if (rs.loading) return rs.loading;
  rs.loading = (async () => {
    try {
      const page = await api('GET', `/rooms/${rs.room.id}/messages?limit=${PAGE_SIZE}`);
      const first = page.messages[0]?.seq;
      if (first !== undefined) {
        // Messages kept from before that are older than this page would
        // leave a gap in between: scrolling back fetches them again.
        for (const seq of rs.messages.keys()) if (seq < first) rs.messages.delete(seq);
      }
      for (const message of page.messages) storeMessage(rs, message);
      rs.hasMoreBefore = page.has_more;
      rs.loaded = true;
    } finally {
      rs.loading = null;
    }
  })();
  return rs.loading;
}

/** Loads the page before the oldest message shown. */
function loadOlder() {
  const rs = state.rooms.get(state.activeId);
  if (!rs?.loaded || !rs.hasMoreBefore || rs.loadingOlder) return rs?.loadingOlder;
  const oldest = Math.min(...rs.messages.keys());
  rs.loadingOlder = (async () => {
    try {
      const page = await api(
        'GET',
        `/rooms/${rs.room.id}/messages?before_seq=${oldest}&limit=${PAGE_SIZE}`,
      );
      for (const message of page.messages) storeMessage(rs, message);
      rs.hasMoreBefore = page.has_more;
    } finally {
      rs.loadingOlder = null;
    }
    if (state.activeId === rs.room.id) renderMessages({ keepFromBottom: true });
  })();
  return rs.loadingOlder;
}

ui.loadOlder.addEventListener('click', guarded(loadOlder));
ui.scroller.addEventListener('scroll', () => {
  if (ui.scroller.scrollTop < 80) loadOlder()?.catch(showError);
});

// ---------------------------------------------------------------- messages

/** Keeps a message once per (room, seq); true if it was new. */
/**
 * Keeps a message unless its seq is known; true if it was new. Only what
 * the server delivers without gaps (`message` events, syncs, the newest
 * history page) moves the room's sync cursor: an `ack` or an update can
 * overtake the `message` events of earlier seqs, and a sync from past them
 * after a reconnect would skip those.
 */
function storeMessage(rs, message, { inOrder = true } = {}) {
  if (inOrder && message.seq > rs.lastSeq) rs.lastSeq = message.seq;
  if (rs.messages.has(message.seq)) return false;
  rs.messages.set(message.seq, message);
  return true;
}

function addMessage(roomId, message, { inOrder = true } = {}) {
  const rs = state.rooms.get(roomId);
  if (!rs) {
    reloadRoomsSoon();
    return;
  }
  const mine = message.author_id === state.me?.id;
  // Our own message seen (live, or replayed by a sync): no longer pending.
  const wasPending = mine && message.client_msg_id && state.outbox.delete(message.client_msg_id);
  if (wasPending) saveOutbox();
  state.typing.get(roomId)?.delete(message.author_id);
  if (!storeMessage(rs, message, { inOrder })) {
    if (wasPending && roomId === state.activeId) renderMessages();
    return;
  }
  if (mine) markRead(roomId, message.seq);
  if (roomId === state.activeId) {
    if (rs.members && !rs.members.has(message.author_id)) loadMembers(roomId, true).catch(showError);
    renderMessages();
    renderTyping();
    markActiveRead();
  }
  renderRoomList();
}

function replaceMessage(roomId, message) {
  const rs = state.rooms.get(roomId);
  if (!rs) return;
  if (rs.messages.has(message.seq)) rs.messages.set(message.seq, message);
  else storeMessage(rs, message, { inOrder: false });
  if (message.deleted && state.editing?.roomId === roomId && state.editing.seq === message.seq) {
    state.editing = null;
  }
  if (roomId === state.activeId) renderMessages();
}

function onAck(frame) {
  const wasPending = state.outbox.delete(frame.client_msg_id);
  if (wasPending) saveOutbox();
  addMessage(frame.message.room_id, frame.message, { inOrder: false });
  if (wasPending && frame.message.room_id === state.activeId) renderMessages();
}

// Read markers: per user, in localStorage (they hold no secret).
const readKey = () => `p-chat.read.${state.me?.id}`;

function loadRead() {
  try {
    return JSON.parse(localStorage.getItem(readKey()) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

function markRead(roomId, seq) {
  if (seq <= (state.read[roomId] ?? 0)) return;
  state.read[roomId] = seq;
  localStorage.setItem(readKey(), JSON.stringify(state.read));
  renderRoomList();
}

function markActiveRead() {
  const rs = state.rooms.get(state.activeId);
  if (rs?.loaded && document.visibilityState === 'visible') markRead(rs.room.id, rs.lastSeq);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState !== 'visible' || !state.me) return;
  markActiveRead();
  // Timers are slowed in background tabs: catch up on the token and the socket.
  if (session.nearlyExpired()) session.refresh().catch(showError);
  socket?.probe();
});

// ---------------------------------------------------------------- sending

const outboxKey = () => `p-chat.outbox.${state.me?.id}`;

function saveOutbox() {
  sessionStorage.setItem(outboxKey(), JSON.stringify([...state.outbox.values()]));
}

/** Pending sends survive a reload of the tab. */
function restoreOutbox() {
  state.outbox.clear();
  try {
    for (const item of JSON.parse(sessionStorage.getItem(outboxKey()) ?? '[]')) {
      state.outbox.set(item.client_msg_id, item);
    }
  } catch {
    sessionStorage.removeItem(outboxKey());
  }
}

function transmit(item) {
  return socket?.send({
    type: 'send',
    room_id: item.room_id,
    body: item.body,
    client_msg_id: item.client_msg_id,
  });
}

/** Sends every unacknowledged message again (the server stores each once). */
function flushOutbox() {
  for (const item of state.outbox.values()) {
    if (!item.failed && state.rooms.has(item.room_id)) transmit(item);
  }
}

function sendComposed() {
  const roomId = state.activeId;
  const body = ui.composer.value.trim();
  if (!roomId || !body) return;
  if ([...body].length > MAX_BODY_CHARS) {
    showError(`A message has at most ${MAX_BODY_CHARS} characters (this one has ${[...body].length}).`);
    return;
  }
  const item = {
    client_msg_id: newId(),
    room_id: roomId,
    body,
    created_at: new Date().toISOString(),
    failed: false,
    error: null,
  };
  state.outbox.set(item.client_msg_id, item);
  saveOutbox();
  ui.composer.value = '';
  resizeComposer();
  renderMessages({ toBottom: true });
  // Not connected: it stays pending and goes out after the reconnect.
  transmit(item);
}

formHandler(ui.composerForm, async () => sendComposed());

ui.composer.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendComposed();
  }
});

ui.composer.addEventListener('input', () => {
  resizeComposer();
  const now = Date.now();
  if (state.activeId && ui.composer.value.trim() && now - state.lastTypingSent > TYPING_SEND_EVERY_MS) {
    state.lastTypingSent = now;
    socket?.send({ type: 'typing', room_id: state.activeId });
  }
});

const fieldSizing = globalThis.CSS?.supports?.('field-sizing', 'content');
function resizeComposer() {
  if (fieldSizing) return;
  ui.composer.style.height = 'auto';
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, 160)}px`;
}

// ---------------------------------------------------------------- typing

function onTyping(roomId, userId) {
  if (userId === state.me?.id || !state.rooms.has(roomId)) return;
  if (!state.typing.has(roomId)) state.typing.set(roomId, new Map());
  state.typing.get(roomId).set(userId, Date.now() + TYPING_SHOWN_MS);
  if (roomId === state.activeId) {
    renderTyping();
    setTimeout(renderTyping, TYPING_SHOWN_MS + 100);
  }
}

function renderTyping() {
  const rs = state.rooms.get(state.activeId);
  const now = Date.now();
  const who = [...(state.typing.get(state.activeId)?.entries() ?? [])]
    .filter(([, until]) => until > now)
    .map(([userId]) => (rs ? displayName(rs, userId) : '…'));
  ui.typing.textContent =
    who.length === 0
      ? ''
      : who.length === 1
        ? `${who[0]} is typing…`
        : who.length === 2
          ? `${who[0]} and ${who[1]} are typing…`
          : 'Several people are typing…';
}

// ---------------------------------------------------------------- rendering messages

/** key → `{node, signature}` of the message elements shown. */
let messageNodes = new Map();

function resetMessageNodes() {
  messageNodes = new Map();
  ui.messageList.replaceChildren();
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

function formatTime(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return { short: (today ? timeFormat : dayTimeFormat).format(date), full: fullFormat.format(date) };
}

function initial(name) {
  return ([...(name ?? '?').trim()][0] ?? '?').toUpperCase();
}

function hueClass(id) {
  let hash = 0;
  for (const char of id ?? '') hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hue-${hash % 8}`;
}

/**
 * Brings the message list in line with the state, reusing the elements of
 * unchanged messages (so focus, selection and scrolling survive).
 */
function renderMessages({ toBottom = false, keepFromBottom = false } = {}) {
  const rs = state.rooms.get(state.activeId);
  if (!rs) return;
  const scroller = ui.scroller;
  const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;

  const items = [];
  if (rs.loaded) {
    for (const seq of [...rs.messages.keys()].sort((a, b) => a - b)) {
      items.push({ key: `m${seq}`, message: rs.messages.get(seq) });
    }
  }
  for (const pending of state.outbox.values()) {
    if (pending.room_id === rs.room.id) items.push({ key: `p${pending.client_msg_id}`, pending });
  }

  const used = new Set();
  let cursor = ui.messageList.firstElementChild;
  for (const item of items) {
    used.add(item.key);
    const signature = item.message ? messageSignature(rs, item.message) : pendingSignature(item.pending);
    let entry = messageNodes.get(item.key);
    if (!entry) {
      entry = { node: ui.messageTemplate.content.firstElementChild.cloneNode(true), signature: null };
      messageNodes.set(item.key, entry);
    }
    if (entry.signature !== signature) {
      if (item.message) fillMessage(entry.node, rs, item.message);
      else fillPending(entry.node, item.pending);
      entry.signature = signature;
    }
    if (entry.node === cursor) cursor = cursor.nextElementSibling;
    else ui.messageList.insertBefore(entry.node, cursor);
  }
  for (const [key, entry] of messageNodes) {
    if (!used.has(key)) {
      entry.node.remove();
      messageNodes.delete(key);
    }
  }

  ui.loadOlder.hidden = !(rs.loaded && rs.hasMoreBefore);
  ui.historyStart.hidden = !(rs.loaded && !rs.hasMoreBefore);
  if (toBottom || nearBottom) scroller.scrollTop = scroller.scrollHeight;
  else if (keepFromBottom) scroller.scrollTop = scroller.scrollHeight - fromBottom;
}

function messageSignature(rs, message) {
  const editing = state.editing?.roomId === rs.room.id && state.editing.seq === message.seq;
  return JSON.stringify([
    message.body,
    message.deleted,
    message.edited_at,
    displayName(rs, message.author_id),
    editing,
    formatTime(message.created_at).short,
  ]);
}

function pendingSignature(pending) {
  return JSON.stringify([pending.body, pending.failed, pending.error]);
}

function fillCommon(node, { authorId, author, createdAt }) {
  const mine = authorId === state.me?.id;
  node.classList.toggle('mine', mine);
  const avatar = node.querySelector('.avatar');
  avatar.className = `avatar ${hueClass(authorId)}`;
  avatar.textContent = initial(author);
  node.querySelector('.author').textContent = author;
  const time = node.querySelector('.time');
  const { short, full } = formatTime(createdAt);
  time.dateTime = createdAt;
  time.textContent = short;
  time.title = full;
}

function button(label, action, testid, ariaLabel) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = 'link';
  element.textContent = label;
  element.dataset.action = action;
  element.dataset.testid = testid;
  if (ariaLabel) element.setAttribute('aria-label', ariaLabel);
  return element;
}

function fillMessage(node, rs, message) {
  const mine = message.author_id === state.me?.id;
  const author = displayName(rs, message.author_id);
  fillCommon(node, { authorId: message.author_id, author, createdAt: message.created_at });
  node.dataset.seq = String(message.seq);
  node.dataset.pending = 'false';
  node.dataset.messageId = message.id;
  node.dataset.deleted = String(message.deleted);
  delete node.dataset.failed;
  delete node.dataset.clientMsgId;
  node.querySelector('.state').textContent = message.deleted ? '' : message.edited_at ? '(edited)' : '';
  const body = node.querySelector('.body');
  const actions = node.querySelector('.actions');
  actions.replaceChildren();
  const editing = state.editing?.roomId === rs.room.id && state.editing.seq === message.seq;
  if (message.deleted) {
    body.className = 'body deleted';
    body.textContent = 'This message was deleted.';
  } else if (editing) {
    body.className = 'body';
    const form = document.createElement('form');
    form.className = 'edit-form';
    const label = document.createElement('label');
    label.className = 'visually-hidden';
    label.textContent = 'Edit your message';
    const input = document.createElement('textarea');
    input.id = `edit-${message.seq}`;
    label.htmlFor = input.id;
    input.dataset.testid = 'edit-input';
    input.value = message.body;
    input.rows = 2;
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'primary';
    save.dataset.testid = 'edit-save';
    save.textContent = 'Save';
    const cancel = button('Cancel', 'cancel-edit', 'edit-cancel');
    form.append(label, input, save, cancel);
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        cancelEdit();
      } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener(
      'submit',
      guarded(async (event) => {
        event.preventDefault();
        await saveEdit(rs.room.id, message, input.value);
      }),
    );
    body.replaceChildren(form);
    queueMicrotask(() => input.focus());
  } else {
    body.className = 'body';
    body.textContent = message.body;
  }
  if (mine && !message.deleted && !editing) {
    const when = formatTime(message.created_at).short;
    actions.append(
      button('Edit', 'edit', 'message-edit', `Edit your message from ${when}`),
      button('Delete', 'delete', 'message-delete', `Delete your message from ${when}`),
    );
  }
}

function fillPending(node, pending) {
  fillCommon(node, {
    authorId: state.me?.id,
    author: state.me?.display_name ?? '',
    createdAt: pending.created_at,
  });
  delete node.dataset.seq;
  delete node.dataset.messageId;
  node.dataset.pending = 'true';
  node.dataset.clientMsgId = pending.client_msg_id;
  node.dataset.failed = String(pending.failed);
  node.querySelector('.state').textContent = pending.failed ? `not sent: ${pending.error}` : 'sending…';
  const body = node.querySelector('.body');
  body.className = 'body';
  body.textContent = pending.body;
  const actions = node.querySelector('.actions');
  actions.replaceChildren();
  if (pending.failed) {
    actions.append(
      button('Retry', 'retry', 'message-retry'),
      button('Discard', 'discard', 'message-discard'),
    );
  }
}

function cancelEdit() {
  const seq = state.editing?.seq;
  state.editing = null;
  renderMessages();
  ui.messageList.querySelector(`[data-seq="${seq}"] [data-action="edit"]`)?.focus();
}

async function saveEdit(roomId, message, text) {
  const body = text.trim();
  if (!body) throw new Error('A message cannot be empty: delete it instead.');
  if (body === message.body) {
    cancelEdit();
    return;
  }
  const edited = await api('PATCH', `/rooms/${roomId}/messages/${message.id}`, { body });
  state.editing = null;
  replaceMessage(roomId, edited);
  ui.composer.focus();
}

ui.messageList.addEventListener(
  'click',
  guarded(async (event) => {
    const target = event.target.closest('[data-action]');
    if (!target) return;
    const node = target.closest('.message');
    const roomId = state.activeId;
    const rs = state.rooms.get(roomId);
    if (!rs || !node) return;
    const action = target.dataset.action;
    if (action === 'retry' || action === 'discard') {
      const pending = state.outbox.get(node.dataset.clientMsgId);
      if (!pending) return;
      if (action === 'discard') {
        state.outbox.delete(pending.client_msg_id);
      } else {
        pending.failed = false;
        pending.error = null;
        transmit(pending);
      }
      saveOutbox();
      renderMessages();
      return;
    }
    const message = rs.messages.get(Number(node.dataset.seq));
    if (!message) return;
    if (action === 'edit') {
      state.editing = { roomId, seq: message.seq };
      renderMessages();
    } else if (action === 'cancel-edit') {
      cancelEdit();
    } else if (action === 'delete') {
      if (!window.confirm('Delete this message?')) return;
      const tombstone = await api('DELETE', `/rooms/${roomId}/messages/${message.id}`);
      replaceMessage(roomId, tombstone);
    }
  }),
);

// ---------------------------------------------------------------- start

boot().catch((error) => {
  showError(error);
  if (!ui.chatView.hidden) return;
  showView('auth');
});

