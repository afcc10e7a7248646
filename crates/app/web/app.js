// The p-chat browser client: plain DOM, no framework, no build step.
//
// - api.js: the login session (tokens in sessionStorage, refresh) and REST.
// - socket.js: the WebSocket (auth frame, own pings, reconnect with backoff).
// - this file: the state (rooms, members, messages, pending sends) and the UI.
//
// Every change in a room reaches the client as a room event with the room's
// next position `pos` (docs/protocol.md). Each room keeps the position of
// the last event it applied and applies only the next one, so every event is
// applied once and in order; an event further ahead means one was missed,
// and the room is synced from its position. After every (re)connect the
// client lists its rooms (dropping the ones it lost, adding new ones) and
// syncs each from its position, so what changed while it was away (edits,
// deletions, renames, membership and roles) is applied without a reload.
// Sends carry a client_msg_id and stay visibly pending until their `ack`;
// unacknowledged ones are sent again after a reconnect (the server stores a
// client_msg_id once). Unread and mention counts are the server's (read
// markers, `PUT /rooms/{id}/read`, `read_marker` frames), so every device of
// a user shows the same badges.

import { setUpAccountPanels, showAdminEntry } from './account.js';
import { Session, newId, sha256Hex } from './api.js';
import { ChatSocket } from './socket.js';
import {
  REACTION_EMOJI,
  bodyNodes,
  continuesGroup,
  dayKey,
  dayLabel,
  mentionQuery,
  snippetNodes,
} from './text.js';

const PAGE_SIZE = 50;
const MAX_BODY_CHARS = 4000;
const TYPING_SEND_EVERY_MS = 3_000;
const TYPING_SHOWN_MS = 5_000;
/** At most this many `sync` requests in flight (the server rate-limits frames). */
const SYNC_PARALLEL = 4;
const ACTIVE_ROOM_KEY = 'p-chat.active-room';
/** Where clients before server read markers kept them (removed at login). */
const LEGACY_READ_KEY = 'p-chat.read';
/** The user's choice of browser notifications (a preference, not a secret). */
const NOTIFY_KEY = 'p-chat.notify';
/** Members offered by the `@` autocomplete at once. */
const MENTION_SUGGESTIONS = 6;
/** A quoted message is shown cut to this many characters. */
const QUOTE_CHARS = 120;
/** A notification's text is cut to this many characters. */
const NOTIFICATION_CHARS = 140;
/** Messages loaded before a search result opened in its room. */
const JUMP_CONTEXT = 25;
/** History pages read at most to reach a search result (100 messages each). */
const JUMP_MAX_PAGES = 50;
/** The largest history page (`limit`). */
const MAX_PAGE = 100;
/** Search results asked for at once. */
const SEARCH_LIMIT = 20;
/** Badges show at most this, then "99+". */
const BADGE_MAX = 99;

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
  replyBar: $('reply-bar'),
  replyBarText: $('reply-bar-text'),
  replyCancel: $('reply-cancel'),
  mentionList: $('mention-suggestions'),
  settingsOpen: $('settings-open'),
  settingsDialog: $('settings-dialog'),
  settingsForm: $('settings-form'),
  settingsDanger: $('settings-danger'),
  deleteRoom: $('delete-room'),
  searchForm: $('search-form'),
  searchInput: $('search-input'),
  searchBlock: $('search-results-block'),
  searchResults: $('search-results'),
  searchClose: $('search-close'),
  notifyToggle: $('notify-toggle'),
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
  /** room id → Map(user id → until when they are shown as typing). */
  typing: new Map(),
  /** `{roomId, seq}` of the message being edited. */
  editing: null,
  /** `{roomId, id, seq}` of the message the composer replies to. */
  replyTo: null,
  /** user id → display name of the members picked with `@` in the composer. */
  composeMentions: new Map(),
  /** The `@` suggestions shown: `{start, members, active}`, or null. */
  suggesting: null,
  /** `{roomId, seq}` of the message opened from a search result. */
  highlight: null,
  /** user id → `{presence, last_seen_at}` as last heard (a `presence` frame or `GET /users/{id}`). */
  presence: new Map(),
  /** Users whose presence was asked for (once each). */
  presenceAsked: new Set(),
  /** The server has no `GET /users/{id}` (an older version): presence comes from frames only. */
  noPresence: false,
  /** Rooms this client is leaving (their member_left is expected). */
  leaving: new Set(),
  /** Sync bookkeeping for the current connection: ids of rooms waiting, and in flight. */
  syncQueue: [],
  syncing: new Set(),
  lastTypingSent: 0,
};

/** A room with what this client knows of it; `pos` is where its events start. */
function roomState(room, pos = room.last_pos) {
  return {
    room,
    /**
     * The position of the last room event applied: the next one applied is
     * `pos + 1`, and a sync starts after it.
     */
    pos,
    /** The newest seq known. */
    lastSeq: room.last_seq ?? 0,
    /** The user's read marker, and the unread and mention counts after it (the server's). */
    lastRead: room.last_read_seq ?? 0,
    unread: room.unread_count ?? 0,
    mentions: room.mention_count ?? 0,
    /** The newest seq the counts include: a live message above it adds to them. */
    countedSeq: room.last_seq ?? 0,
    /** A `PUT /rooms/{id}/read` is on its way. */
    marking: false,
    /** The other member of a direct room (`{user_id, display_name}`), once read. */
    peer: null,
    /** Its members are being read for `peer`. */
    findingPeer: false,
    /** seq → message; one entry per (room, seq). */
    messages: new Map(),
    /** Its members and newest history page were read (the room was opened). */
    loaded: false,
    loading: null,
    hasMoreBefore: false,
    loadingOlder: null,
    /** user id → member, once loaded (then kept by the room's events). */
    members: null,
    /** Its position was lost (events pruned): it is being read afresh. */
    reloading: false,
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
  // Read markers are the server's now: drop what an older client kept here.
  localStorage.removeItem(`${LEGACY_READ_KEY}.${state.me.id}`);
  renderNotifyToggle();
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
    onReady: () => onReady(),
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
  state.replyTo = null;
  state.highlight = null;
  state.composeMentions.clear();
  state.presence.clear();
  state.presenceAsked.clear();
  state.noPresence = false;
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
  renamed: (user) => renamed(user),
});

/** The user chose a new display name: shown as such everywhere here at once. */
function renamed(user) {
  state.me = { ...state.me, ...user };
  ui.meName.textContent = state.me.display_name;
  ui.meAvatar.textContent = initial(state.me.display_name);
  for (const rs of state.rooms.values()) {
    const member = rs.members?.get(state.me.id);
    if (member) rs.members.set(state.me.id, { ...member, display_name: state.me.display_name });
  }
  renderHeader();
  renderMessages();
}

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

/**
 * After `ready` on a new connection: catch up on everything missed. Syncs
 * asked on the connection before are void (their answers will not come).
 */
function onReady() {
  state.syncing.clear();
  state.syncQueue = [];
  flushOutbox();
  inBackground(catchUp);
}

/**
 * The resume recipe of docs/protocol.md: list the rooms (those gone are
 * dropped, new ones added at the position listed), then sync every room
 * from its position. The open room is read now if its first read failed
 * (it was opened while the connection was going down).
 */
async function catchUp() {
  for (const id of await loadRooms()) requestSync(id);
  const open = state.rooms.get(state.activeId);
  if (open) await showOpenRoom(open);
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

/** Asks for a sync of a room from its position (once at a time). */
function requestSync(roomId) {
  const rs = state.rooms.get(roomId);
  if (!rs || rs.reloading || state.syncing.has(roomId) || state.syncQueue.includes(roomId)) return;
  state.syncQueue.push(roomId);
  pumpSync();
}

function pumpSync() {
  while (state.syncing.size < SYNC_PARALLEL && state.syncQueue.length > 0) {
    const roomId = state.syncQueue[0];
    const rs = state.rooms.get(roomId);
    if (!rs || rs.reloading) {
      state.syncQueue.shift();
      continue;
    }
    // From the position at the time of asking: events applied since the
    // request was queued are not asked for again.
    const sent = socket?.send({ type: 'sync', room_id: roomId, after_pos: rs.pos });
    if (!sent) return; // disconnected: the next `ready` starts over
    state.syncQueue.shift();
    state.syncing.add(roomId);
  }
}

/**
 * The end of a sync. The room is synced again while the server has more,
 * or while the room's position is still behind the replay's end (its
 * position went back meanwhile, see readRoomState, and the replay's events
 * did not follow on from it).
 */
function onSynced(frame) {
  state.syncing.delete(frame.room_id);
  const rs = state.rooms.get(frame.room_id);
  if (rs && (frame.has_more || rs.pos < frame.last_pos)) requestSync(frame.room_id);
  pumpSync();
}

function handleFrame(frame) {
  if (Number.isInteger(frame.pos)) {
    onRoomEvent(frame);
    return;
  }
  switch (frame.type) {
    case 'ack':
      onAck(frame);
      break;
    case 'synced':
      onSynced(frame);
      break;
    case 'typing':
      onTyping(frame.room_id, frame.user_id);
      break;
    case 'read_marker':
      onReadMarker(frame);
      break;
    case 'presence':
      onPresence(frame);
      break;
    case 'error':
      onSocketError(frame);
      break;
    default:
      // A newer server's frame this client does not know: nothing to show.
      break;
  }
}

/** How each kind of room event changes the room (docs/protocol.md lists them). */
const APPLY = {
  message: (rs, frame) => addMessage(rs, frame.message),
  message_updated: (rs, frame) => replaceMessage(rs, frame.message),
  message_deleted: (rs, frame) => replaceMessage(rs, frame.message),
  member_joined: onMemberJoined,
  member_left: onMemberLeft,
  member_updated: onMemberUpdated,
  room_updated: (rs, frame) => {
    rs.room = frame.room;
    rs.lastSeq = Math.max(rs.lastSeq, frame.room.last_seq);
    renderRoomList();
    if (rs.room.id === state.activeId) renderHeader();
  },
  room_deleted: (rs) => {
    const expected = state.leaving.has(rs.room.id);
    removeRoom(rs.room.id);
    if (!expected) showError(`The room “${rs.room.name}” was deleted.`);
  },
  reaction_added: (rs, frame) => changeReaction(rs, frame, true),
  reaction_removed: (rs, frame) => changeReaction(rs, frame, false),
};

/**
 * A room event: applied if it is the room's next one, ignored if it was
 * applied already; one further ahead means an event was missed, and the
 * room is synced from its position (which replays this one too).
 */
function onRoomEvent(frame) {
  let rs = state.rooms.get(frame.room_id);
  if (!rs) {
    // A room new to this user starts with the user's own member_joined.
    if (frame.type !== 'member_joined' || frame.member.user_id !== state.me?.id) return;
    rs = roomState(frame.room, frame.pos - 1);
    state.rooms.set(frame.room_id, rs);
  }
  if (frame.pos <= rs.pos) return;
  if (frame.pos > rs.pos + 1) {
    requestSync(frame.room_id);
    return;
  }
  rs.pos = frame.pos;
  // A kind this client does not know changed nothing it shows.
  APPLY[frame.type]?.(rs, frame);
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
  const rs = frame.ref && state.syncing.has(frame.ref) ? state.rooms.get(frame.ref) : undefined;
  if (frame.ref) state.syncing.delete(frame.ref);
  pumpSync();
  if (rs && (frame.code === 'resync_required' || frame.code === 'invalid_pos')) {
    // The events after its position are gone (pruned, or a restored database).
    inBackground(() => reloadRoom(rs));
    return;
  }
  if (rs && (frame.code === 'room_not_found' || frame.code === 'forbidden')) {
    lostRoom(rs);
    return;
  }
  showError(`${frame.message} (${frame.code})`);
}

// ---------------------------------------------------------------- rooms

/**
 * `GET /rooms`: the rooms this client had and the list lacks are gone
 * (left, removed or deleted meanwhile); a listed room new to it starts at
 * the `last_pos` listed (its members and history are read when it is
 * opened, after that position). A room known already keeps its own state:
 * the list may be older than the events applied to it since the request.
 * Returns the ids of the rooms listed.
 */
async function loadRooms() {
  const known = new Set(state.rooms.keys());
  const rooms = await api('GET', '/rooms');
  const listed = new Set(rooms.map((room) => room.id));
  for (const id of known) {
    const rs = state.rooms.get(id);
    if (rs && !listed.has(id)) lostRoom(rs);
  }
  for (const room of rooms) {
    const rs = state.rooms.get(room.id);
    if (rs) {
      rs.lastSeq = Math.max(rs.lastSeq, room.last_seq);
      takeReadState(rs, room);
    } else {
      state.rooms.set(room.id, roomState(room));
    }
    findPeer(state.rooms.get(room.id));
  }
  renderRoomList();
  return [...listed];
}

/**
 * The read state of a room as the server listed it. Messages applied here
 * that the listing did not count yet (newer than its `last_seq`) are added
 * on top of its counts.
 */
function takeReadState(rs, listed) {
  if (listed.last_read_seq < rs.lastRead) return; // an older listing than a marker seen since
  rs.lastRead = listed.last_read_seq;
  rs.unread = listed.unread_count;
  rs.mentions = listed.mention_count;
  for (const message of rs.messages.values()) {
    if (message.seq > listed.last_seq && countsAsUnread(rs, message)) {
      rs.unread += 1;
      if (mentionsMe(message)) rs.mentions += 1;
    }
  }
  rs.countedSeq = Math.max(listed.last_seq, rs.countedSeq);
}

/** True for a message of someone else, not deleted, after the read marker. */
function countsAsUnread(rs, message) {
  return message.author_id !== state.me?.id && !message.deleted && message.seq > rs.lastRead;
}

function mentionsMe(message) {
  return Boolean(state.me && message.mentions?.includes(state.me.id));
}

/** `read_marker`: this user read a room here or on another device. */
function onReadMarker(frame) {
  const rs = state.rooms.get(frame.room_id);
  if (!rs || frame.last_read_seq < rs.lastRead) return;
  rs.lastRead = frame.last_read_seq;
  rs.unread = frame.unread_count;
  rs.mentions = frame.mention_count;
  rs.countedSeq = Math.max(rs.countedSeq, rs.lastSeq);
  renderRoomList();
}

/**
 * The other member of a direct room, for its title: read once (from the
 * loaded members, else `GET /rooms/{id}/members`).
 */
function findPeer(rs) {
  if (!rs || rs.room.visibility !== 'direct' || rs.peer || rs.findingPeer) return;
  const pick = (members) => members.find((member) => member.user_id !== state.me?.id) ?? null;
  if (rs.members) {
    rs.peer = pick([...rs.members.values()]);
    if (rs.peer) askPresence(rs.peer.user_id);
    return;
  }
  rs.findingPeer = true;
  api('GET', `/rooms/${rs.room.id}/members`)
    .then((members) => {
      rs.peer = pick(members);
      if (rs.peer) askPresence(rs.peer.user_id);
      renderRoomList();
      if (rs.room.id === state.activeId) renderHeader();
    })
    .catch((error) => {
      // A room left meanwhile has no members to read; anything else is shown.
      if (error.status !== 404 && error.status !== 403) showError(error);
    })
    .finally(() => {
      rs.findingPeer = false;
    });
}

/** What a room is called here: a direct room by the other person's name. */
function roomTitle(rs) {
  if (rs.room.visibility === 'direct' && rs.peer) return rs.peer.display_name;
  return rs.room.name;
}

// ---------------------------------------------------------------- presence

/** Reads a user's presence once (`GET /users/{id}`); nothing is shown without it. */
function askPresence(userId) {
  if (!userId || userId === state.me?.id || state.presenceAsked.has(userId) || state.noPresence) return;
  state.presenceAsked.add(userId);
  api('GET', `/users/${userId}`)
    .then((user) => {
      if (!user?.presence || state.presence.has(userId)) return;
      state.presence.set(userId, { presence: user.presence, last_seen_at: user.last_seen_at ?? null });
      renderPresence();
    })
    .catch((error) => {
      // A server without the endpoint (its generic 404) is not asked again;
      // a user with no room in common (`user_not_found`) simply has no dot.
      if (error.code === 'not_found') state.noPresence = true;
    });
}

function onPresence(frame) {
  if (!frame.user_id || (frame.presence !== 'online' && frame.presence !== 'offline')) return;
  state.presence.set(frame.user_id, { presence: frame.presence, last_seen_at: frame.last_seen_at ?? null });
  renderPresence();
}

function renderPresence() {
  renderRoomList();
  renderHeader();
}

const lastSeenFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** A dot telling whether `userId` is online, or null while unknown. */
function presenceDot(userId) {
  const known = state.presence.get(userId);
  if (!known) return null;
  const dot = document.createElement('span');
  dot.className = `presence ${known.presence}`;
  dot.dataset.testid = 'presence';
  dot.dataset.presence = known.presence;
  dot.dataset.userId = userId;
  const label =
    known.presence === 'online'
      ? 'online'
      : known.last_seen_at
        ? `offline, last seen ${lastSeenFormat.format(new Date(known.last_seen_at))}`
        : 'offline';
  dot.setAttribute('role', 'img');
  dot.setAttribute('aria-label', label);
  dot.title = label;
  return dot;
}

/** A room this user has just created or joined (over REST): known from now on. */
function addRoom(room) {
  if (!state.rooms.has(room.id)) state.rooms.set(room.id, roomState(room));
  findPeer(state.rooms.get(room.id));
  renderRoomList();
}

/** Forgets a room; true if it was known. */
function removeRoom(id) {
  if (!state.rooms.delete(id)) return false;
  state.typing.delete(id);
  state.leaving.delete(id);
  state.syncing.delete(id);
  if (state.activeId === id) closeRoom();
  if (state.replyTo?.roomId === id) state.replyTo = null;
  renderRoomList();
  return true;
}

/** The user is no longer in a room (removed, or it was deleted): say so. */
function lostRoom(rs) {
  const expected = state.leaving.has(rs.room.id);
  if (removeRoom(rs.room.id) && !expected) {
    showError(`You are no longer a member of “${rs.room.name}”.`);
  }
}

/**
 * The room's position was lost (its next events were pruned): it is read
 * afresh (`GET /rooms/{id}` first, for the position to go on from) and
 * synced from there; if it is open, its members and newest history are read
 * again as on opening. Reads of it in flight are waited for, and none
 * starts meanwhile, so none puts the position back before the one read here.
 */
async function reloadRoom(rs) {
  if (rs.reloading) return;
  rs.reloading = true;
  let room;
  try {
    await Promise.allSettled([rs.loading, rs.loadingOlder]);
    room = await api('GET', `/rooms/${rs.room.id}`);
  } catch (error) {
    if (error.status === 404 || error.status === 403) {
      lostRoom(rs);
      return;
    }
    throw error;
  } finally {
    rs.reloading = false;
  }
  if (state.rooms.get(room.id) !== rs) return; // gone meanwhile
  rs.room = room;
  rs.pos = room.last_pos;
  rs.lastSeq = Math.max(rs.lastSeq, room.last_seq);
  rs.messages.clear();
  rs.members = null;
  rs.loaded = false;
  rs.hasMoreBefore = false;
  renderRoomList();
  requestSync(room.id);
  if (room.id === state.activeId) {
    renderHeader();
    renderMessages();
    await showOpenRoom(rs);
  }
}

function onMemberJoined(rs, frame) {
  rs.room = frame.room;
  rs.lastSeq = Math.max(rs.lastSeq, frame.room.last_seq);
  rs.members?.set(frame.member.user_id, frame.member);
  if (rs.members) askPresence(frame.member.user_id);
  findPeer(rs);
  renderRoomList();
  if (rs.room.id === state.activeId) {
    renderHeader();
    renderMessages();
  }
}

function onMemberLeft(rs, frame) {
  if (frame.user_id === state.me?.id) {
    lostRoom(rs);
    return;
  }
  rs.members?.delete(frame.user_id);
  if (rs.room.id === state.activeId) renderHeader();
}

function onMemberUpdated(rs, frame) {
  rs.members?.set(frame.member.user_id, frame.member);
  if (rs.room.id === state.activeId) {
    renderHeader();
    // My role decides which messages I may delete.
    renderMessages();
  }
}

function unread(rs) {
  return Math.max(0, rs.unread);
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
    const mentions = Math.max(0, rs.mentions);
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'room-item';
    button.dataset.testid = 'room-item';
    button.dataset.roomId = room.id;
    button.dataset.roomName = room.name;
    button.dataset.title = roomTitle(rs);
    button.dataset.unread = String(count);
    button.dataset.mentions = String(mentions);
    if (room.id === state.activeId) button.setAttribute('aria-current', 'true');
    const icon = roomIcon(room.visibility);
    const name = document.createElement('span');
    name.className = 'room-name';
    name.textContent = roomTitle(rs);
    button.append(icon, name);
    const dot = room.visibility === 'direct' && rs.peer ? presenceDot(rs.peer.user_id) : null;
    if (dot) button.append(dot);
    if (mentions > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge mention-badge';
      badge.dataset.testid = 'mention-count';
      badge.textContent = `@${mentions > BADGE_MAX ? `${BADGE_MAX}+` : mentions}`;
      badge.setAttribute('aria-label', `${mentions} mentioning you`);
      button.append(badge);
    }
    if (count > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.dataset.testid = 'unread-count';
      badge.textContent = count > BADGE_MAX ? `${BADGE_MAX}+` : String(count);
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
  const created = await api('POST', '/rooms', { name, visibility: ui.newRoomVisibility.value });
  addRoom(created);
  ui.newRoomForm.reset();
  ui.newRoom.open = false;
  await openRoom(created.id);
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
          // Read after the join: its position is where the room's events go on.
          addRoom(await api('GET', `/rooms/${room.id}`));
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
  addRoom(room);
  ui.dmForm.reset();
  ui.dm.open = false;
  await openRoom(room.id);
});

formHandler(ui.addMemberForm, async () => {
  const roomId = state.activeId;
  const email = ui.addMemberEmail.value.trim();
  if (!roomId || !email) throw new Error('Enter the email of the person to add.');
  // The member list shows the new member with its member_joined event.
  await api('POST', `/rooms/${roomId}/members`, { email });
  ui.addMemberForm.reset();
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

/**
 * Runs `read`, a REST read of a room's state (members, a history page) that
 * applies what it got. Events applied while it was on its way may be older
 * or newer than what it read, so the room's position goes back to where it
 * was when the read began and a sync applies those events again on top of
 * it (applying an event is an upsert or a removal: the state converges).
 */
async function readRoomState(rs, read) {
  const from = rs.pos;
  await read();
  if (rs.pos > from) {
    rs.pos = from;
    requestSync(rs.room.id);
  }
}

/** Reads what an open room shows, its members and newest history page (once). */
function loadRoom(rs) {
  if (rs.loading) return rs.loading;
  rs.loading = readRoomState(rs, async () => {
    const [members, page] = await Promise.all([
      api('GET', `/rooms/${rs.room.id}/members`),
      api('GET', `/rooms/${rs.room.id}/messages?limit=${PAGE_SIZE}`),
    ]);
    rs.members = new Map(members.map((member) => [member.user_id, member]));
    for (const member of members) askPresence(member.user_id);
    findPeer(rs);
    const first = page.messages[0]?.seq;
    if (first !== undefined) {
      // Messages kept from before that are older than this page would
      // leave a gap in between: scrolling back fetches them again.
      for (const seq of rs.messages.keys()) if (seq < first) rs.messages.delete(seq);
    }
    for (const message of page.messages) mergeMessage(rs, message, { fromHistory: true });
    rs.hasMoreBefore = page.has_more;
    rs.loaded = true;
  }).finally(() => {
    rs.loading = null;
  });
  return rs.loading;
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
    state.highlight = null;
    state.composeMentions.clear();
    hideSuggestions();
    resetMessageNodes();
    ui.composer.value = '';
  }
  renderReplyBar();
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
  await showOpenRoom(rs);
}

/** Reads the open room's members and newest history unless done, and shows them. */
async function showOpenRoom(rs) {
  if (!rs.loaded && !rs.reloading) {
    await loadRoom(rs);
    if (state.activeId !== rs.room.id) return;
    renderHeader();
    renderMessages({ toBottom: true });
  }
  markActiveRead();
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

/** The user's role in a room (`owner`, `admin`, `member`), once its members are read. */
function myRole(rs) {
  return rs?.members?.get(state.me?.id)?.role ?? null;
}

/** May a member of role `mine` remove one of role `theirs` (api.md's permission table)? */
function canKick(mine, theirs) {
  if (mine === 'owner') return theirs !== 'owner';
  return mine === 'admin' && theirs === 'member';
}

/** A small button of the member list that runs `action`. */
function memberButton(label, testid, ariaLabel, action, kind = 'link') {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = kind;
  element.textContent = label;
  element.dataset.testid = testid;
  element.setAttribute('aria-label', ariaLabel);
  element.addEventListener(
    'click',
    guarded(async () => {
      element.disabled = true;
      try {
        await action();
      } finally {
        element.disabled = false;
      }
    }),
  );
  return element;
}

/** The controls an owner or admin has over one member (shown only to them). */
function memberControls(rs, member) {
  const mine = myRole(rs);
  const controls = [];
  if (member.user_id === state.me?.id || rs.room.visibility === 'direct') return controls;
  const path = `/rooms/${rs.room.id}/members/${member.user_id}`;
  if (mine === 'owner') {
    const next = member.role === 'admin' ? 'member' : 'admin';
    controls.push(
      memberButton(
        next === 'admin' ? 'Make admin' : 'Make member',
        'member-role',
        `${next === 'admin' ? 'Make' : 'Demote'} ${member.display_name} ${next === 'admin' ? 'an admin' : 'to member'}`,
        // The member list changes with the member_updated event.
        () => api('PATCH', path, { role: next }),
      ),
      memberButton('Make owner', 'member-handover', `Hand the room over to ${member.display_name}`, async () => {
        if (!window.confirm(`Hand “${rs.room.name}” over to ${member.display_name}? You become an admin.`)) return;
        await api('PATCH', path, { role: 'owner' });
      }),
    );
  }
  if (canKick(mine, member.role)) {
    controls.push(
      memberButton('Remove', 'member-kick', `Remove ${member.display_name} from the room`, async () => {
        if (!window.confirm(`Remove ${member.display_name} from “${rs.room.name}”?`)) return;
        await api('DELETE', path);
      }, 'link danger-link'),
    );
  }
  return controls;
}

function renderHeader() {
  const rs = state.rooms.get(state.activeId);
  if (!rs) return;
  const { room } = rs;
  const title = document.createElement('span');
  title.textContent = roomTitle(rs);
  const heading = [roomIcon(room.visibility), title];
  const dot = room.visibility === 'direct' && rs.peer ? presenceDot(rs.peer.user_id) : null;
  if (dot) heading.push(dot);
  ui.roomTitle.replaceChildren(...heading);
  ui.roomTitle.dataset.roomName = room.name;
  ui.roomTitle.dataset.title = roomTitle(rs);
  const about =
    room.topic ?? { public: 'Public room', private: 'Private room', direct: 'Direct conversation' }[room.visibility];
  // A direct conversation's two members are equals.
  ui.roomTopic.textContent =
    room.visibility === 'direct' ? about : `${about} · owner: ${displayName(rs, room.owner_id)}`;
  const members = rs.members ? [...rs.members.values()] : [];
  ui.membersCount.textContent = rs.members
    ? `${members.length} member${members.length === 1 ? '' : 's'}`
    : 'Members';
  ui.memberList.replaceChildren(
    ...members.map((member) => {
      const li = document.createElement('li');
      li.dataset.testid = 'member';
      li.dataset.userId = member.user_id;
      li.dataset.role = member.role;
      const avatar = document.createElement('span');
      avatar.className = `avatar small ${hueClass(member.user_id)}`;
      avatar.setAttribute('aria-hidden', 'true');
      avatar.textContent = initial(member.display_name);
      const name = document.createElement('span');
      name.className = 'member-name';
      name.textContent = member.user_id === state.me?.id ? `${member.display_name} (you)` : member.display_name;
      li.append(avatar, name);
      const memberDot = presenceDot(member.user_id);
      if (memberDot) li.append(memberDot);
      if (member.role !== 'member') {
        const role = document.createElement('span');
        role.className = 'role';
        role.textContent = member.role;
        li.append(role);
      }
      const controls = memberControls(rs, member);
      if (controls.length > 0) {
        const box = document.createElement('span');
        box.className = 'member-controls';
        box.append(...controls);
        li.append(box);
      }
      return li;
    }),
  );
  // Only admins and the owner add members, change the room or delete it;
  // nobody can be added to a direct conversation.
  const role = myRole(rs);
  const manages = room.visibility !== 'direct' && (role === 'admin' || role === 'owner');
  ui.addMemberForm.hidden = !manages;
  ui.settingsOpen.hidden = !manages;
  if (!manages && ui.settingsDialog.open) ui.settingsDialog.close();
  ui.settingsDanger.hidden = role !== 'owner';
}

// ---------------------------------------------------------------- room settings

ui.settingsDialog.querySelector('[data-close]').addEventListener('click', () => ui.settingsDialog.close());

ui.settingsOpen.addEventListener('click', () => {
  const rs = state.rooms.get(state.activeId);
  if (!rs) return;
  const { elements } = ui.settingsForm;
  elements.name.value = rs.room.name;
  elements.topic.value = rs.room.topic ?? '';
  elements.visibility.value = rs.room.visibility;
  ui.settingsDanger.hidden = myRole(rs) !== 'owner';
  ui.settingsDialog.showModal();
});

formHandler(ui.settingsForm, async () => {
  const rs = state.rooms.get(state.activeId);
  if (!rs) return;
  const { elements } = ui.settingsForm;
  const name = elements.name.value.trim();
  if (!name) throw new Error('Give the room a name.');
  const topic = elements.topic.value.trim();
  // The header changes with the room_updated event.
  await api('PATCH', `/rooms/${rs.room.id}`, {
    name,
    topic: topic === '' ? null : topic,
    visibility: elements.visibility.value,
  });
  ui.settingsDialog.close();
});

ui.deleteRoom.addEventListener(
  'click',
  guarded(async () => {
    const rs = state.rooms.get(state.activeId);
    if (!rs || !window.confirm(`Delete “${rs.room.name}” with all its messages, for everyone?`)) return;
    state.leaving.add(rs.room.id);
    try {
      await api('DELETE', `/rooms/${rs.room.id}`);
    } catch (error) {
      state.leaving.delete(rs.room.id);
      throw error;
    }
    ui.settingsDialog.close();
    removeRoom(rs.room.id);
  }),
);

/** Loads the page before the oldest message shown. */
function loadOlder() {
  const rs = state.rooms.get(state.activeId);
  if (!rs?.loaded || rs.reloading || !rs.hasMoreBefore || rs.loadingOlder) return rs?.loadingOlder;
  const oldest = Math.min(...rs.messages.keys());
  rs.loadingOlder = readRoomState(rs, async () => {
    const page = await api('GET', `/rooms/${rs.room.id}/messages?before_seq=${oldest}&limit=${PAGE_SIZE}`);
    for (const message of page.messages) mergeMessage(rs, message, { fromHistory: true });
    rs.hasMoreBefore = page.has_more;
  }).finally(() => {
    rs.loadingOlder = null;
  });
  return rs.loadingOlder.then(() => {
    if (state.activeId === rs.room.id) renderMessages({ keepFromBottom: true });
  });
}

ui.loadOlder.addEventListener('click', guarded(loadOlder));
ui.scroller.addEventListener('scroll', () => {
  if (ui.scroller.scrollTop < 80) loadOlder()?.catch(showError);
});

// ---------------------------------------------------------------- messages

/** When a message was last edited (0 if never). */
const editedAt = (message) => (message.edited_at ? Date.parse(message.edited_at) : 0);

/** True if `a` is an earlier state of the message than `b` (a tombstone is its last). */
function earlier(a, b) {
  if (a.deleted || b.deleted) return !a.deleted;
  return editedAt(a) < editedAt(b);
}

/**
 * Keeps a message once per (room, seq), as its latest state: an answer that
 * arrives late (an `ack`, a REST answer, a history page read before a later
 * event) never undoes an edit or a deletion. Outside history pages, a
 * message older than the history shown is not kept: scrolling back reads it
 * as it is then. True if the room's messages changed.
 */
function mergeMessage(rs, message, { fromHistory = false } = {}) {
  rs.lastSeq = Math.max(rs.lastSeq, message.seq);
  const held = rs.messages.get(message.seq);
  if (held) {
    if (earlier(message, held)) return false;
  } else if (!fromHistory && rs.loaded && rs.hasMoreBefore) {
    if (message.seq < Math.min(...rs.messages.keys())) return false;
  }
  rs.messages.set(message.seq, message);
  return true;
}

/** A new message (a `message` event, or the `ack` of our own). */
function addMessage(rs, message) {
  const roomId = rs.room.id;
  const mine = message.author_id === state.me?.id;
  // Our own message seen (live, or replayed by a sync): no longer pending.
  const wasPending = mine && message.client_msg_id && state.outbox.delete(message.client_msg_id);
  if (wasPending) saveOutbox();
  state.typing.get(roomId)?.delete(message.author_id);
  if (message.seq > rs.countedSeq) {
    rs.countedSeq = message.seq;
    if (countsAsUnread(rs, message)) {
      rs.unread += 1;
      if (mentionsMe(message)) rs.mentions += 1;
      notify(rs, message);
    }
  }
  if (!mergeMessage(rs, message) && !wasPending) return;
  if (roomId === state.activeId) {
    renderMessages();
    renderTyping();
    markActiveRead();
  }
  renderRoomList();
}

/** An edited or deleted message (an event, or the answer to our own request). */
function replaceMessage(rs, message) {
  const held = rs.messages.get(message.seq);
  if (message.deleted && message.seq <= rs.countedSeq && !held?.deleted && countsAsUnread(rs, held ?? { ...message, deleted: false })) {
    // An unread message deleted: it no longer counts.
    rs.unread = Math.max(0, rs.unread - 1);
    if (held && mentionsMe(held)) rs.mentions = Math.max(0, rs.mentions - 1);
    renderRoomList();
  }
  if (!mergeMessage(rs, message)) return;
  if (message.deleted && state.editing?.roomId === rs.room.id && state.editing.seq === message.seq) {
    state.editing = null;
  }
  if (rs.room.id === state.activeId) renderMessages();
}

function onAck(frame) {
  const rs = state.rooms.get(frame.message.room_id);
  if (rs) {
    addMessage(rs, frame.message);
  } else if (state.outbox.delete(frame.client_msg_id)) {
    saveOutbox();
  }
}

/**
 * Moves the read marker of the open room to its newest message, when the
 * room is shown and the page visible (`PUT /rooms/{id}/read`). The badges
 * clear at once; the answer (and the `read_marker` frame every device of
 * the user gets) carries the server's counts. One call at a time per room.
 */
function markActiveRead() {
  const rs = state.rooms.get(state.activeId);
  if (!rs?.loaded || document.visibilityState !== 'visible') return;
  if (rs.lastSeq <= rs.lastRead && rs.unread === 0 && rs.mentions === 0) return;
  if (rs.marking) return;
  const seq = rs.lastSeq;
  rs.marking = true;
  rs.unread = 0;
  rs.mentions = 0;
  renderRoomList();
  api('PUT', `/rooms/${rs.room.id}/read`, { seq })
    .then((read) => {
      if (read.last_read_seq >= rs.lastRead) {
        rs.lastRead = read.last_read_seq;
        rs.unread = read.unread_count;
        rs.mentions = read.mention_count;
      }
    })
    .catch((error) => {
      // Gone meanwhile: its events say so. Offline: the next `ready` reads the counts again.
      if (error.status !== 0 && error.status !== 404 && error.status !== 403) showError(error);
    })
    .finally(() => {
      rs.marking = false;
      renderRoomList();
      if (rs.room.id === state.activeId && rs.lastSeq > rs.lastRead) markActiveRead();
    });
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
  const frame = { type: 'send', room_id: item.room_id, body: item.body, client_msg_id: item.client_msg_id };
  if (item.reply_to) frame.reply_to = item.reply_to;
  if (item.mentions?.length) frame.mentions = item.mentions;
  return socket?.send(frame);
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
  // The members picked with `@` whose mention is still in the text.
  const mentions = [...state.composeMentions]
    .filter(([, name]) => body.includes(`@${name}`))
    .map(([userId]) => userId);
  const item = {
    client_msg_id: newId(),
    room_id: roomId,
    body,
    reply_to: state.replyTo?.roomId === roomId ? state.replyTo.id : null,
    mentions,
    created_at: new Date().toISOString(),
    failed: false,
    error: null,
  };
  state.outbox.set(item.client_msg_id, item);
  saveOutbox();
  state.replyTo = null;
  state.composeMentions.clear();
  hideSuggestions();
  renderReplyBar();
  ui.composer.value = '';
  resizeComposer();
  renderMessages({ toBottom: true });
  // Not connected: it stays pending and goes out after the reconnect.
  transmit(item);
}

formHandler(ui.composerForm, async () => sendComposed());

ui.composer.addEventListener('keydown', (event) => {
  if (state.suggesting && !event.isComposing) {
    const { members } = state.suggesting;
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const step = event.key === 'ArrowDown' ? 1 : members.length - 1;
      state.suggesting.active = (state.suggesting.active + step) % members.length;
      renderSuggestions();
      return;
    }
    if (event.key === 'Enter' || event.key === 'Tab') {
      event.preventDefault();
      pickMention(members[state.suggesting.active]);
      return;
    }
    if (event.key === 'Escape') {
      event.preventDefault();
      hideSuggestions();
      return;
    }
  }
  if (event.key === 'Escape' && state.replyTo) {
    event.preventDefault();
    cancelReply();
    return;
  }
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    sendComposed();
  }
});

ui.composer.addEventListener('click', () => suggestMentions());
ui.composer.addEventListener('blur', () => hideSuggestions());

ui.composer.addEventListener('input', () => {
  resizeComposer();
  suggestMentions();
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

// ---------------------------------------------------------------- mentions

/** Offers the open room's members matching the `@word` before the caret. */
function suggestMentions() {
  const rs = state.rooms.get(state.activeId);
  const typed = mentionQuery(ui.composer);
  if (!rs?.members || !typed) {
    hideSuggestions();
    return;
  }
  const query = typed.query.toLowerCase();
  const members = [...rs.members.values()]
    .filter((member) => member.user_id !== state.me?.id)
    .filter((member) => member.display_name.toLowerCase().includes(query))
    .sort((a, b) => {
      const aStarts = a.display_name.toLowerCase().startsWith(query);
      const bStarts = b.display_name.toLowerCase().startsWith(query);
      return aStarts === bStarts ? a.display_name.localeCompare(b.display_name) : aStarts ? -1 : 1;
    })
    .slice(0, MENTION_SUGGESTIONS);
  if (members.length === 0) {
    hideSuggestions();
    return;
  }
  const activeId = state.suggesting?.members[state.suggesting.active]?.user_id;
  const active = Math.max(0, members.findIndex((member) => member.user_id === activeId));
  state.suggesting = { start: typed.start, members, active };
  renderSuggestions();
}

function renderSuggestions() {
  const { members, active } = state.suggesting;
  ui.mentionList.replaceChildren(
    ...members.map((member, index) => {
      const li = document.createElement('li');
      li.id = `mention-option-${index}`;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(index === active));
      li.dataset.testid = 'mention-option';
      li.dataset.userId = member.user_id;
      li.textContent = member.display_name;
      return li;
    }),
  );
  ui.mentionList.hidden = false;
  ui.composer.setAttribute('aria-activedescendant', `mention-option-${active}`);
}

function hideSuggestions() {
  state.suggesting = null;
  ui.mentionList.hidden = true;
  ui.mentionList.replaceChildren();
  ui.composer.removeAttribute('aria-activedescendant');
}

/** Puts `@name ` in place of the `@word` typed, and remembers the member for `mentions`. */
function pickMention(member) {
  if (!state.suggesting || !member) return;
  const { start } = state.suggesting;
  const { value, selectionStart } = ui.composer;
  const inserted = `@${member.display_name} `;
  ui.composer.value = value.slice(0, start) + inserted + value.slice(selectionStart);
  const caret = start + inserted.length;
  ui.composer.setSelectionRange(caret, caret);
  state.composeMentions.set(member.user_id, member.display_name);
  hideSuggestions();
  ui.composer.focus();
}

// Keep the composer focused while a suggestion is clicked or tapped.
ui.mentionList.addEventListener('mousedown', (event) => event.preventDefault());
ui.mentionList.addEventListener('click', (event) => {
  const option = event.target.closest('[data-user-id]');
  if (!option || !state.suggesting) return;
  pickMention(state.suggesting.members.find((member) => member.user_id === option.dataset.userId));
});

// ---------------------------------------------------------------- replies

/** The composer answers `message` (sent with `reply_to`). */
function startReply(rs, message) {
  state.replyTo = { roomId: rs.room.id, id: message.id, seq: message.seq };
  renderReplyBar();
  ui.composer.focus();
}

function cancelReply() {
  state.replyTo = null;
  renderReplyBar();
  ui.composer.focus();
}

ui.replyCancel.addEventListener('click', cancelReply);

function renderReplyBar() {
  const rs = state.rooms.get(state.activeId);
  const reply = state.replyTo;
  if (!rs || reply?.roomId !== rs.room.id) {
    ui.replyBar.hidden = true;
    return;
  }
  const message = rs.messages.get(reply.seq);
  ui.replyBarText.textContent = message
    ? `Replying to ${displayName(rs, message.author_id)}: ${excerpt(message)}`
    : 'Replying to a message';
  ui.replyBar.hidden = false;
}

/** The start of a message's text, for quotes and notifications. */
function excerpt(message, chars = QUOTE_CHARS) {
  if (message.deleted) return 'deleted message';
  const text = [...message.body.replace(/\s+/gu, ' ')];
  return text.length > chars ? `${text.slice(0, chars).join('')}…` : text.join('');
}

/** The message of the room with that id, if it is loaded here. */
function messageById(rs, id) {
  for (const message of rs.messages.values()) if (message.id === id) return message;
  return null;
}

// ---------------------------------------------------------------- reactions

/**
 * A `reaction_added` or `reaction_removed` event: the member joins or leaves
 * the emoji's entry (made at the end, dropped when empty). Applying one
 * twice changes nothing, so the message's own list and its events converge.
 */
function changeReaction(rs, frame, added) {
  const message = messageById(rs, frame.message_id);
  if (!message || message.deleted) return;
  const reactions = (message.reactions ?? []).map((entry) => ({ ...entry, user_ids: [...entry.user_ids] }));
  let entry = reactions.find((candidate) => candidate.emoji === frame.emoji);
  if (added) {
    if (!entry) {
      entry = { emoji: frame.emoji, count: 0, user_ids: [] };
      reactions.push(entry);
    }
    if (!entry.user_ids.includes(frame.user_id)) entry.user_ids.push(frame.user_id);
  } else if (entry) {
    entry.user_ids = entry.user_ids.filter((userId) => userId !== frame.user_id);
  }
  for (const candidate of reactions) candidate.count = candidate.user_ids.length;
  rs.messages.set(message.seq, { ...message, reactions: reactions.filter((candidate) => candidate.count > 0) });
  if (rs.room.id === state.activeId) renderMessages();
}

/** Adds my reaction `emoji` to a message, or takes it back (the events show it). */
async function toggleReaction(rs, message, emoji) {
  const mine = message.reactions?.find((entry) => entry.emoji === emoji)?.user_ids.includes(state.me?.id);
  const path = `/rooms/${rs.room.id}/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`;
  await api(mine ? 'DELETE' : 'PUT', path);
}

// ---------------------------------------------------------------- notifications

function notificationsWanted() {
  return localStorage.getItem(NOTIFY_KEY) === 'on' && globalThis.Notification?.permission === 'granted';
}

function renderNotifyToggle() {
  ui.notifyToggle.checked = notificationsWanted();
  ui.notifyToggle.disabled = !globalThis.Notification;
}

ui.notifyToggle.addEventListener(
  'change',
  guarded(async () => {
    if (!ui.notifyToggle.checked) {
      localStorage.setItem(NOTIFY_KEY, 'off');
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission !== 'granted') {
      localStorage.setItem(NOTIFY_KEY, 'off');
      renderNotifyToggle();
      throw new Error('The browser does not allow notifications for this site: allow them in its settings first.');
    }
    localStorage.setItem(NOTIFY_KEY, 'on');
  }),
);

/** A browser notification for a mention of me or a direct message, while the tab is hidden. */
function notify(rs, message) {
  if (document.visibilityState !== 'hidden' || !notificationsWanted()) return;
  if (!mentionsMe(message) && rs.room.visibility !== 'direct') return;
  const title =
    rs.room.visibility === 'direct'
      ? displayName(rs, message.author_id)
      : `${displayName(rs, message.author_id)} in ${roomTitle(rs)}`;
  const notification = new Notification(title, {
    body: excerpt(message, NOTIFICATION_CHARS),
    tag: message.id,
  });
  notification.addEventListener('click', () => {
    window.focus();
    openRoom(rs.room.id).catch(showError);
    notification.close();
  });
}

// ---------------------------------------------------------------- search

formHandler(ui.searchForm, async () => {
  const q = ui.searchInput.value.trim();
  if (!q) throw new Error('Type the words to search for.');
  const found = await api('GET', `/search/messages?q=${encodeURIComponent(q)}&limit=${SEARCH_LIMIT}`);
  const items = found.results.map((result) => {
    const li = document.createElement('li');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'search-result';
    open.dataset.testid = 'search-result';
    open.dataset.roomId = result.room.id;
    open.dataset.seq = String(result.message.seq);
    const where = document.createElement('span');
    where.className = 'search-where';
    const known = state.rooms.get(result.room.id);
    where.textContent = `${known ? roomTitle(known) : result.room.name} · ${formatTime(result.message.created_at).short}`;
    const snippet = document.createElement('span');
    snippet.className = 'search-snippet';
    snippet.dataset.testid = 'search-snippet';
    snippet.append(...snippetNodes(result.snippet));
    open.append(where, snippet);
    open.addEventListener('click', guarded(() => jumpTo(result.room.id, result.message.seq)));
    li.append(open);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted small';
    li.textContent = `No message matches “${q}”.`;
    items.push(li);
  }
  ui.searchResults.replaceChildren(...items);
  ui.searchBlock.hidden = false;
});

ui.searchClose.addEventListener('click', () => {
  ui.searchBlock.hidden = true;
  ui.searchResults.replaceChildren();
  ui.searchInput.focus();
});

/**
 * Opens a room at message `seq`: the history from a little before it up to
 * what is shown is read (so no gap is left), then it is scrolled to and
 * highlighted.
 */
async function jumpTo(roomId, seq) {
  if (!state.rooms.has(roomId)) throw new Error('You are no longer a member of that room.');
  await openRoom(roomId);
  const rs = state.rooms.get(roomId);
  if (state.activeId !== roomId || !rs?.loaded) return;
  if (!rs.messages.has(seq) && rs.messages.size > 0 && seq < Math.min(...rs.messages.keys())) {
    await loadRange(rs, Math.max(0, seq - JUMP_CONTEXT));
  }
  if (state.activeId !== roomId) return;
  state.highlight = { roomId, seq };
  renderMessages();
  const node = ui.messageList.querySelector(`[data-seq="${seq}"]`);
  node?.scrollIntoView({ block: 'center' });
  node?.focus({ preventScroll: true });
}

/** Reads the history after seq `from` up to the oldest message shown. */
async function loadRange(rs, from) {
  await Promise.allSettled([rs.loadingOlder]);
  await readRoomState(rs, async () => {
    const oldest = Math.min(...rs.messages.keys());
    const read = [];
    let after = from;
    for (let page = 0; page < JUMP_MAX_PAGES; page += 1) {
      const found = await api(
        'GET',
        `/rooms/${rs.room.id}/messages?after_seq=${after}&before_seq=${oldest}&limit=${MAX_PAGE}`,
      );
      read.push(...found.messages);
      if (!found.has_more || found.messages.length === 0) {
        // Kept only once complete: the history shown never has a gap.
        for (const message of read) mergeMessage(rs, message, { fromHistory: true });
        // Seqs have no gaps: messages exist before `from` unless it is 0.
        rs.hasMoreBefore = from > 0;
        return;
      }
      after = found.messages[found.messages.length - 1].seq;
    }
    throw new Error('That message is too far back to open here: scroll back to it instead.');
  });
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
  const place = (node) => {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else ui.messageList.insertBefore(node, cursor);
  };
  let previous = null;
  for (const item of items) {
    const shown = {
      authorId: item.message ? item.message.author_id : state.me?.id,
      createdAt: item.message ? item.message.created_at : item.pending.created_at,
    };
    // A day separator before the first message of each day.
    if (!previous || dayKey(previous.createdAt) !== dayKey(shown.createdAt)) {
      const key = `d${dayKey(shown.createdAt)}`;
      used.add(key);
      let separator = messageNodes.get(key);
      if (!separator) {
        const li = document.createElement('li');
        li.className = 'day-separator';
        li.dataset.testid = 'day-separator';
        li.setAttribute('role', 'separator');
        separator = { node: li, signature: null };
        messageNodes.set(key, separator);
      }
      const label = dayLabel(shown.createdAt);
      if (separator.signature !== label) {
        separator.node.textContent = label;
        separator.signature = label;
      }
      place(separator.node);
    }
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
    // Consecutive messages of one author within a few minutes form a group.
    entry.node.classList.toggle('grouped', continuesGroup(previous, shown));
    const highlighted = Boolean(item.message) && state.highlight?.roomId === rs.room.id && state.highlight.seq === item.message.seq;
    entry.node.classList.toggle('highlight', highlighted);
    entry.node.dataset.highlighted = String(highlighted);
    previous = shown;
    place(entry.node);
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
  const quoted = message.reply_to ? messageById(rs, message.reply_to) : null;
  return JSON.stringify([
    message.body,
    message.deleted,
    message.edited_at,
    displayName(rs, message.author_id),
    editing,
    formatTime(message.created_at).short,
    message.reactions,
    (message.mentions ?? []).map((userId) => displayName(rs, userId)),
    quoted ? [quoted.deleted, quoted.body, displayName(rs, quoted.author_id)] : message.reply_to,
    myRole(rs),
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
    const names = new Map(
      (message.mentions ?? [])
        .filter((userId) => rs.members?.has(userId) || userId === state.me?.id)
        .map((userId) => [displayName(rs, userId), userId === state.me?.id]),
    );
    body.replaceChildren(...bodyNodes(message.body, names));
  }
  const toMe = !message.deleted && mentionsMe(message) && !mine;
  node.classList.toggle('mentions-me', toMe);
  node.dataset.mentionsMe = String(toMe);
  fillQuote(node.querySelector('.quote'), rs, message);
  fillReactions(node.querySelector('.reactions'), message);
  const picker = node.querySelector('.picker');
  picker.hidden = true;
  picker.replaceChildren(
    ...REACTION_EMOJI.map((emoji) => {
      const pick = button(emoji, 'react', 'reaction-option', `React with ${emoji}`);
      pick.dataset.emoji = emoji;
      return pick;
    }),
  );
  const toggle = node.querySelector('.actions-toggle');
  toggle.hidden = message.deleted || editing;
  const when = formatTime(message.created_at).short;
  const who = mine ? 'your message' : `the message of ${author}`;
  node.setAttribute('aria-label', `${author} at ${when}: ${message.deleted ? 'deleted message' : excerpt(message)}`);
  if (!message.deleted && !editing) {
    actions.append(
      button('Reply', 'reply', 'message-reply', `Reply to ${who} from ${when}`),
      button('React', 'picker', 'message-react', `React to ${who} from ${when}`),
    );
    if (mine) actions.append(button('Edit', 'edit', 'message-edit', `Edit your message from ${when}`));
    // Admins and the owner delete anyone's messages, the others their own.
    const role = myRole(rs);
    if (mine || role === 'admin' || role === 'owner') {
      actions.append(button('Delete', 'delete', 'message-delete', `Delete ${who} from ${when}`));
    }
  }
}

/** The message a reply answers, quoted above it (or "deleted message"). */
function fillQuote(quote, rs, message) {
  if (!message.reply_to || message.deleted) {
    quote.hidden = true;
    quote.replaceChildren();
    return;
  }
  const quoted = messageById(rs, message.reply_to);
  quote.hidden = false;
  quote.dataset.replyTo = message.reply_to;
  if (!quoted) {
    quote.replaceChildren(document.createTextNode('Reply to an earlier message'));
    quote.dataset.state = 'unknown';
    return;
  }
  quote.dataset.state = quoted.deleted ? 'deleted' : 'shown';
  const jump = button('', 'jump', 'quote-jump', `Show the message replied to, from ${displayName(rs, quoted.author_id)}`);
  jump.dataset.seq = String(quoted.seq);
  const who = document.createElement('strong');
  who.textContent = quoted.deleted ? '' : `${displayName(rs, quoted.author_id)}: `;
  const what = document.createElement('span');
  what.textContent = excerpt(quoted);
  if (quoted.deleted) what.className = 'deleted';
  jump.append(who, what);
  quote.replaceChildren(jump);
}

/** The reaction chips of a message: emoji and count, pressed when mine. */
function fillReactions(box, message) {
  const reactions = message.deleted ? [] : (message.reactions ?? []);
  box.replaceChildren(
    ...reactions.map((entry) => {
      const mine = entry.user_ids.includes(state.me?.id);
      const chip = document.createElement('button');
      chip.type = 'button';
      chip.className = 'reaction';
      chip.dataset.action = 'toggle-reaction';
      chip.dataset.testid = 'reaction';
      chip.dataset.emoji = entry.emoji;
      chip.dataset.count = String(entry.count);
      chip.dataset.mine = String(mine);
      chip.setAttribute('aria-pressed', String(mine));
      chip.setAttribute('aria-label', `${entry.emoji} ${entry.count}${mine ? ', yours: press to take it back' : ''}`);
      chip.textContent = `${entry.emoji} ${entry.count}`;
      return chip;
    }),
  );
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
  node.querySelector('.actions-toggle').hidden = true;
  node.querySelector('.quote').hidden = true;
  node.querySelector('.reactions').replaceChildren();
  node.querySelector('.picker').hidden = true;
  node.classList.remove('mentions-me');
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
  const rs = state.rooms.get(roomId);
  if (rs) replaceMessage(rs, edited);
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
    if (action === 'jump') {
      await jumpTo(roomId, Number(target.dataset.seq));
      return;
    }
    const message = rs.messages.get(Number(node.dataset.seq));
    if (!message) return;
    if (action === 'menu') {
      setMenu(node, !node.classList.contains('menu-open'));
      if (node.classList.contains('menu-open')) node.querySelector('.actions button')?.focus();
    } else if (action === 'reply') {
      setMenu(node, false);
      startReply(rs, message);
    } else if (action === 'picker') {
      const picker = node.querySelector('.picker');
      picker.hidden = !picker.hidden;
      if (!picker.hidden) picker.querySelector('button')?.focus();
    } else if (action === 'react' || action === 'toggle-reaction') {
      node.querySelector('.picker').hidden = true;
      await toggleReaction(rs, message, target.dataset.emoji);
    } else if (action === 'edit') {
      state.editing = { roomId, seq: message.seq };
      renderMessages();
    } else if (action === 'cancel-edit') {
      cancelEdit();
    } else if (action === 'delete') {
      if (!window.confirm('Delete this message?')) return;
      const tombstone = await api('DELETE', `/rooms/${roomId}/messages/${message.id}`);
      replaceMessage(rs, tombstone);
    }
  }),
);

/** Opens or closes a message's actions (the "⋯" button, or Enter on the message). */
function setMenu(node, open) {
  for (const other of ui.messageList.querySelectorAll('.message.menu-open')) {
    if (other !== node) {
      other.classList.remove('menu-open');
      other.querySelector('.actions-toggle')?.setAttribute('aria-expanded', 'false');
      other.querySelector('.picker').hidden = true;
    }
  }
  node.classList.toggle('menu-open', open);
  node.querySelector('.actions-toggle')?.setAttribute('aria-expanded', String(open));
  if (!open) node.querySelector('.picker').hidden = true;
}

// The keyboard on a focused message: Enter opens its actions, R replies,
// Escape closes the actions (back on the message), arrows move between messages.
ui.messageList.addEventListener(
  'keydown',
  guarded(async (event) => {
    const node = event.target.closest('.message');
    // The edit box handles its own keys (Escape cancels the edit).
    if (!node || event.isComposing || event.defaultPrevented) return;
    if (event.key === 'Escape' && node.classList.contains('menu-open')) {
      event.preventDefault();
      setMenu(node, false);
      node.focus();
      return;
    }
    if (event.target !== node || node.dataset.pending !== 'false') return;
    const rs = state.rooms.get(state.activeId);
    const message = rs?.messages.get(Number(node.dataset.seq));
    if (!message || message.deleted) return;
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      setMenu(node, true);
      node.querySelector('.actions button')?.focus();
    } else if (event.key === 'r' || event.key === 'R') {
      event.preventDefault();
      startReply(rs, message);
    } else if (event.key === 'ArrowUp' || event.key === 'ArrowDown') {
      event.preventDefault();
      const messages = [...ui.messageList.querySelectorAll('.message')];
      const next = messages[messages.indexOf(node) + (event.key === 'ArrowUp' ? -1 : 1)];
      next?.focus();
    }
  }),
);

// ---------------------------------------------------------------- start

boot().catch((error) => {
  showError(error);
  if (!ui.chatView.hidden) return;
  showView('auth');
});

