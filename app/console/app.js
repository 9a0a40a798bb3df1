// The console's entry point: sign-in, the tab bar (by URL hash) and the five views.
import { ApiFailure, api, session, whenKeyRefused } from './api.js';
import { busy, showError } from './dom.js';
import { keysView } from './views/keys.js';
import { requestsView } from './views/requests.js';
import { upstreamView } from './views/upstream.js';
import { usageView } from './views/usage.js';
import { usersView } from './views/users.js';

const $ = (selector) => document.querySelector(selector);
const loginView = $('#login-view');
const loginForm = $('#login-form');
const tabs = $('#tabs');
const logout = $('#logout');

const views = {
  users: { section: $('#users-view'), make: usersView },
  keys: { section: $('#keys-view'), make: keysView },
  upstream: { section: $('#upstream-view'), make: upstreamView },
  usage: { section: $('#usage-view'), make: usageView },
  requests: { section: $('#requests-view'), make: requestsView },
};
const controllers = {};

function currentView() {
  const name = window.location.hash.slice(1);
  return name in views ? name : 'users';
}

function showView() {
  const name = currentView();
  for (const [other, view] of Object.entries(views)) view.section.hidden = other !== name;
  for (const link of tabs.querySelectorAll('a')) link.classList.toggle('active', link.dataset.view === name);
  controllers[name] ??= views[name].make(views[name].section);
  controllers[name].show();
}

function signedIn(yes) {
  loginView.hidden = yes;
  tabs.hidden = !yes;
  logout.hidden = !yes;
  if (yes) showView();
  else for (const view of Object.values(views)) view.section.hidden = true;
}

function signOut(message) {
  session.clear();
  signedIn(false);
  // The page is the next admin's: nothing of this session (an issued key, lists) may stay in it.
  for (const controller of Object.values(controllers)) controller.clear();
  loginForm.reset();
  showError(loginForm, message ? { message } : null);
  $('#login-key').focus();
}

loginForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('#login-key').value.trim();
  busy(loginForm, loginForm.querySelector('button'), async () => {
    // Any admin route proves the key; the smallest list is cheapest.
    await api('GET', '/users', { query: { limit: 1 }, key });
    session.set(key);
    loginForm.reset();
    signedIn(true);
  });
});

logout.addEventListener('click', () => signOut());
window.addEventListener('hashchange', () => {
  if (session.key) showView();
});
whenKeyRefused((failure) => {
  const why =
    failure instanceof ApiFailure && failure.status === 403
      ? 'That key is not an admin key.'
      : failure.message;
  signOut(`Signed out: ${why}`);
});

signedIn(Boolean(session.key));
