// The account and administration panels: the user's devices (sign one out),
// password change, account deletion; for instance administrators, accounts
// (search, disable, enable, instance role) and invitations. Plain DOM, like
// app.js, which hands in what the panels need.

import { sha256Hex } from './api.js';

/** Accounts per page of the administrators' list. */
const ADMIN_PAGE = 50;
/** Seconds in a day, for invitation lifetimes given in days. */
const DAY_SECONDS = 86_400;

const $ = (id) => document.getElementById(id);

const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const formatWhen = (iso) => (iso ? when.format(new Date(iso)) : '');

/** A button that runs `action` (errors shown by `hooks.guarded`). */
function actionButton(label, testid, action, hooks, kind = '') {
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = label;
  button.dataset.testid = testid;
  if (kind) button.className = kind;
  button.addEventListener(
    'click',
    hooks.guarded(async () => {
      button.disabled = true;
      try {
        await action();
      } finally {
        button.disabled = false;
      }
    }),
  );
  return button;
}

/**
 * Wires the panels. `hooks`: `api(method, path, body)`, `me()` (the current
 * user), `guarded(handler)`, `formHandler(form, action)`, `signedOut(text)`
 * (back to the login page with a notice), `renamed(user)` (the user's new
 * display name, to show everywhere).
 */
export function setUpAccountPanels(hooks) {
  const account = $('account-dialog');
  const admin = $('admin-dialog');
  for (const dialog of [account, admin]) {
    dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
  }

  // ------------------------------------------------------------ devices

  async function renderSessions() {
    const sessions = await hooks.api('GET', '/users/me/sessions');
    const list = $('session-list');
    list.replaceChildren(
      ...sessions.map((entry) => {
        const item = document.createElement('li');
        item.dataset.testid = 'session';
        item.dataset.current = String(entry.current);
        const what = document.createElement('span');
        what.className = 'session-what';
        what.textContent = entry.user_agent ?? 'Unknown device';
        const detail = document.createElement('span');
        detail.className = 'muted small';
        detail.textContent = entry.current
          ? 'This device'
          : `Last used ${formatWhen(entry.last_used_at)}`;
        item.append(what, detail);
        if (!entry.current) {
          item.append(
            actionButton(
              'Sign out',
              'session-sign-out',
              async () => {
                await hooks.api('DELETE', `/users/me/sessions/${entry.id}`);
                await renderSessions();
              },
              hooks,
              'danger',
            ),
          );
        }
        return item;
      }),
    );
  }

  $('account-open').addEventListener(
    'click',
    hooks.guarded(async () => {
      $('account-notice').hidden = true;
      $('display-name').value = hooks.me()?.display_name ?? '';
      account.showModal();
      await renderSessions();
    }),
  );

  // ------------------------------------------------------------ display name

  const nameForm = $('display-name-form');
  hooks.formHandler(nameForm, async () => {
    const displayName = nameForm.elements.display_name.value.trim();
    if (!displayName) throw new Error('Enter a display name.');
    const user = await hooks.api('PATCH', '/users/me', { display_name: displayName });
    hooks.renamed(user);
    $('account-notice').textContent = `You are now shown as “${user.display_name}”.`;
    $('account-notice').hidden = false;
  });

  const passwordForm = $('password-form');
  hooks.formHandler(passwordForm, async () => {
    const current = passwordForm.elements.current.value;
    const next = passwordForm.elements.password.value;
    if (next.length < 8) throw new Error('The new password needs at least 8 characters.');
    try {
      await hooks.api('POST', '/users/me/password', {
        current_password: await sha256Hex(current),
        new_password: await sha256Hex(next),
      });
    } catch (error) {
      if (error.code === 'wrong_password') throw new Error('The current password is wrong.');
      throw error;
    }
    passwordForm.reset();
    const notice = $('account-notice');
    notice.textContent = 'Password changed. Your other devices were signed out.';
    notice.hidden = false;
    await renderSessions();
  });

  const deleteForm = $('delete-account-form');
  hooks.formHandler(deleteForm, async () => {
    const password = deleteForm.elements.password.value;
    if (!password) throw new Error('Enter your password to delete the account.');
    try {
      await hooks.api('DELETE', '/users/me', { password: await sha256Hex(password) });
    } catch (error) {
      if (error.code === 'wrong_password') throw new Error('The password is wrong.');
      if (error.code === 'owner_must_hand_over') {
        throw new Error('You own rooms: hand them over to another member (or delete them) first.');
      }
      throw error;
    }
    account.close();
    hooks.signedOut('Your account was deleted.');
  });

  // ------------------------------------------------------- administration

  let after = null;
  let search = '';

  function accountState(user) {
    if (user.deleted_at) return 'deleted';
    if (user.disabled_at) return 'disabled';
    return user.email_verified ? 'active' : 'unverified';
  }

  function adminRow(user) {
    const item = document.createElement('li');
    item.dataset.testid = 'admin-user';
    item.dataset.email = user.email;
    const who = document.createElement('span');
    who.className = 'admin-who';
    who.textContent = `${user.display_name} <${user.email}>`;
    const status = document.createElement('span');
    status.className = 'muted small';
    status.dataset.testid = 'admin-user-state';
    status.textContent = `${accountState(user)}${user.role === 'admin' ? ', administrator' : ''}`;
    item.append(who, status);
    if (user.id === hooks.me()?.id || user.deleted_at) return item;
    const replace = (changed) => item.replaceWith(adminRow(changed));
    item.append(
      user.disabled_at
        ? actionButton('Enable', 'admin-enable', async () => {
            replace(await hooks.api('POST', `/admin/users/${user.id}/enable`));
          }, hooks)
        : actionButton('Disable', 'admin-disable', async () => {
            replace(await hooks.api('POST', `/admin/users/${user.id}/disable`));
          }, hooks, 'danger'),
      actionButton(
        user.role === 'admin' ? 'Make member' : 'Make admin',
        'admin-role',
        async () => {
          const role = user.role === 'admin' ? 'member' : 'admin';
          replace(await hooks.api('PATCH', `/admin/users/${user.id}`, { role }));
        },
        hooks,
      ),
    );
    return item;
  }

  /** Bumped by every new listing, so an older one still in flight is dropped. */
  let listing = 0;

  async function loadUsers(reset) {
    const list = $('admin-users');
    if (reset) {
      listing += 1;
      after = null;
      list.replaceChildren();
    }
    const mine = listing;
    const query = new URLSearchParams({ limit: String(ADMIN_PAGE) });
    if (search) query.set('q', search);
    if (after) query.set('after', after);
    const users = await hooks.api('GET', `/admin/users?${query}`);
    if (mine !== listing) return; // a newer search replaced this list meanwhile
    list.append(...users.map(adminRow));
    after = users.at(-1)?.email ?? after;
    $('admin-more').hidden = users.length < ADMIN_PAGE;
  }

  function inviteRow(invite) {
    const item = document.createElement('li');
    item.dataset.testid = 'invite';
    const text = document.createElement('span');
    text.textContent = `${invite.uses_left} use(s) left, until ${formatWhen(invite.expires_at)}`;
    item.append(
      text,
      actionButton('Revoke', 'invite-revoke', async () => {
        await hooks.api('DELETE', `/admin/invites/${invite.id}`);
        item.remove();
      }, hooks, 'danger'),
    );
    return item;
  }

  async function loadInvites() {
    const invites = await hooks.api('GET', '/admin/invites');
    $('invites').replaceChildren(...invites.map(inviteRow));
  }

  $('admin-open').addEventListener(
    'click',
    hooks.guarded(async () => {
      admin.showModal();
      $('invite-link').hidden = true;
      await Promise.all([loadUsers(true), loadInvites()]);
    }),
  );
  hooks.formHandler($('admin-search-form'), async () => {
    search = $('admin-search').value.trim();
    await loadUsers(true);
  });
  $('admin-more').addEventListener('click', hooks.guarded(() => loadUsers(false)));
  hooks.formHandler($('invite-form'), async () => {
    const uses = Number($('invite-uses').value);
    const days = Number($('invite-days').value);
    const issued = await hooks.api('POST', '/admin/invites', {
      uses,
      expires_in: days * DAY_SECONDS,
    });
    const link = $('invite-link');
    const url = new URL(window.location.origin);
    url.searchParams.set('invite', issued.token);
    link.textContent = `Invitation link (shown once): ${url}`;
    link.hidden = false;
    await loadInvites();
  });
}

/** Shows the Admin button to instance administrators only. */
export function showAdminEntry(me) {
  $('admin-open').hidden = me?.role !== 'admin';
}
