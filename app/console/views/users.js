// Users: create, list, disable/enable, grant/remove admin.
import { api } from '../api.js';
import { badge, busy, button, formatTime, resetForm, row } from '../dom.js';
import { createPager } from '../pager.js';

export function usersView(section) {
  const form = section.querySelector('#user-form');

  const pager = createPager({
    section,
    columns: 8,
    emptyText: 'No users yet.',
    fetchPage: (after) => api('GET', '/users', { query: { limit: 50, after } }),
    renderRow: (user) =>
      row(
        [
          { text: user.id, className: 'num' },
          user.username,
          user.email,
          user.is_admin ? badge('admin') : 'user',
          user.disabled ? badge('disabled') : badge('active'),
          { text: user.active_keys, className: 'num' },
          formatTime(user.created_at),
          {
            className: 'actions',
            node: actions(user),
          },
        ],
        { id: user.id, username: user.username },
      ),
  });

  function actions(user) {
    const span = document.createElement('span');
    const change = (body) => () =>
      busy(form, null, async () => {
        await api('PATCH', `/users/${user.id}`, { body });
        await pager.reset();
      });
    span.append(
      button(user.disabled ? 'Enable' : 'Disable', change({ disabled: !user.disabled })),
      button(user.is_admin ? 'Remove admin' : 'Make admin', change({ is_admin: !user.is_admin })),
    );
    return span;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    busy(form, form.querySelector('button[type=submit]'), async () => {
      await api('POST', '/users', {
        body: {
          username: String(data.get('username')).trim(),
          email: String(data.get('email')).trim(),
          is_admin: data.get('is_admin') === 'on',
        },
      });
      form.reset();
      await pager.reset();
    });
  });

  return {
    show: () => pager.reset(),
    clear: () => {
      pager.clear();
      resetForm(form);
    },
  };
}
