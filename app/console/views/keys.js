// API keys: issue (shown once), list, edit limits, revoke.
import { api, listAll } from '../api.js';
import {
  badge,
  busy,
  button,
  clear,
  el,
  formatNumber,
  formatTime,
  isoToLocal,
  localToIso,
  numberOrNull,
  resetForm,
  row,
  showError,
  splitList,
} from '../dom.js';
import { createPager } from '../pager.js';

function status(key) {
  if (key.status !== 'active') return badge(key.status);
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return badge('expired');
  return badge('active');
}

export function keysView(section) {
  const form = section.querySelector('#key-form');
  const userSelect = form.querySelector('select[name=user_id]');
  const newKey = section.querySelector('#new-key');
  const newKeyValue = section.querySelector('#new-key-value');
  const dialog = section.querySelector('#key-dialog');
  const editForm = section.querySelector('#key-edit-form');
  let editing = null;

  const pager = createPager({
    section,
    columns: 11,
    emptyText: 'No API keys yet.',
    fetchPage: (after) => api('GET', '/keys', { query: { limit: 50, after } }),
    renderRow: (key) =>
      row(
        [
          { text: key.id, className: 'num' },
          key.name,
          { text: key.prefix, className: 'mono' },
          key.username,
          status(key),
          { text: key.rpm === null ? 'default' : formatNumber(key.rpm), className: 'num' },
          { text: key.tpm === null ? 'default' : formatNumber(key.tpm), className: 'num' },
          { text: key.models === null ? 'all' : key.models.join(', '), className: 'wrap' },
          key.expires_at ? formatTime(key.expires_at) : 'never',
          key.last_used_at ? formatTime(key.last_used_at) : 'never',
          { className: 'actions', node: actions(key) },
        ],
        { id: key.id, name: key.name },
      ),
  });

  function actions(key) {
    const span = el('span');
    if (key.status !== 'active') return span;
    span.append(
      button('Edit', () => openEditor(key)),
      button(
        'Revoke',
        () => {
          if (
            !window.confirm(
              `Revoke key ${key.prefix} (${key.name || 'unnamed'})? Clients using it are refused at once.`,
            )
          )
            return;
          busy(form, null, async () => {
            await api('DELETE', `/keys/${key.id}`);
            await pager.reset();
          });
        },
        'small danger',
      ),
    );
    return span;
  }

  function openEditor(key) {
    editing = key;
    showError(editForm, null);
    editForm.querySelector('.key-id').textContent = `${key.prefix}`;
    editForm.elements.name.value = key.name;
    editForm.elements.rpm.value = key.rpm ?? '';
    editForm.elements.tpm.value = key.tpm ?? '';
    editForm.elements.models.value = key.models?.join(', ') ?? '';
    editForm.elements.expires_at.value = isoToLocal(key.expires_at);
    dialog.showModal();
  }

  editForm.querySelector('.cancel').addEventListener('click', () => dialog.close());
  editForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const f = editForm.elements;
    busy(editForm, editForm.querySelector('button[type=submit]'), async () => {
      const body = {
        name: f.name.value.trim(),
        rpm: numberOrNull(f.rpm.value),
        tpm: numberOrNull(f.tpm.value),
        models: splitList(f.models.value),
      };
      // Sent only when changed: an expiry already past may not be written again.
      if (f.expires_at.value !== isoToLocal(editing.expires_at))
        body.expires_at = localToIso(f.expires_at.value);
      await api('PATCH', `/keys/${editing.id}`, { body });
      dialog.close();
      await pager.reset();
    });
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const f = form.elements;
    busy(form, form.querySelector('button[type=submit]'), async () => {
      const issued = await api('POST', '/keys', {
        body: {
          user_id: Number(f.user_id.value),
          name: f.name.value.trim(),
          rpm: numberOrNull(f.rpm.value),
          tpm: numberOrNull(f.tpm.value),
          models: splitList(f.models.value),
          expires_at: localToIso(f.expires_at.value),
        },
      });
      newKeyValue.value = issued.key;
      newKey.hidden = false;
      newKeyValue.select();
      form.reset();
      await pager.reset();
    });
  });

  section.querySelector('#new-key-copy').addEventListener('click', () => {
    navigator.clipboard?.writeText(newKeyValue.value).catch(() => newKeyValue.select());
  });
  // The key leaves the page once the admin has it, or when the admin signs out.
  const forgetNewKey = () => {
    newKeyValue.value = '';
    newKey.hidden = true;
  };
  section.querySelector('#new-key-done').addEventListener('click', forgetNewKey);

  async function loadUsers() {
    const users = await listAll('/users');
    const chosen = userSelect.value;
    clear(userSelect);
    for (const user of users) {
      if (user.disabled) continue;
      userSelect.append(el('option', { text: `${user.username} (#${user.id})`, attrs: { value: user.id } }));
    }
    if (chosen) userSelect.value = chosen;
  }

  return {
    show: async () => {
      await busy(form, null, loadUsers);
      await pager.reset();
    },
    clear: () => {
      pager.clear();
      forgetNewKey();
      dialog.close(); // a sign-out on a refused key may come with the editor open
      editing = null;
      resetForm(editForm);
      resetForm(form);
      clear(userSelect);
    },
  };
}
