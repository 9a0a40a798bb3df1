// Upstream keys: add (sealed server-side), list without the key, enable/disable, delete.
import { api } from '../api.js';
import { badge, busy, button, el, formatTime, resetForm, row, splitList } from '../dom.js';
import { createPager } from '../pager.js';

export function upstreamView(section) {
  const form = section.querySelector('#upstream-form');
  const provider = form.elements.provider;
  const azureOnly = form.querySelectorAll('.azure-only');

  const syncProvider = () => {
    for (const label of azureOnly) label.hidden = provider.value !== 'azure';
  };
  provider.addEventListener('change', syncProvider);
  syncProvider();

  const pager = createPager({
    section,
    columns: 9,
    emptyText: 'No upstream keys. Add one here or list them in OPENAI_API_KEYS / AZURE_API_KEYS.',
    fetchPage: (after) => api('GET', '/upstream-keys', { query: { limit: 50, after } }),
    renderRow: (key) =>
      row(
        [
          { text: key.id, className: 'num' },
          key.provider,
          { text: `…${key.fingerprint_suffix}`, className: 'mono' },
          key.source === 'env' ? 'environment' : 'admin API',
          el(
            'span',
            { title: key.cooldown_until ? `until ${formatTime(key.cooldown_until)}` : '' },
            badge(key.status),
          ),
          { text: key.failure_count, className: 'num' },
          { text: key.last_error ?? '', className: 'wrap' },
          { text: key.endpoint ?? '', className: 'wrap' },
          { className: 'actions', node: actions(key) },
        ],
        { id: key.id },
      ),
  });

  function actions(key) {
    const span = el('span');
    const act = (work) => () =>
      busy(form, null, async () => {
        await work();
        await pager.reset();
      });
    const setStatus = (status) => act(() => api('PATCH', `/upstream-keys/${key.id}`, { body: { status } }));
    // {status: "active"} clears failures and any cooldown; on an active or cooling key that is
    // all it changes, so it is named for that. A cooling key can be disabled like an active one.
    if (key.status === 'active' && key.failure_count > 0)
      span.append(button('Clear failures', setStatus('active')));
    if (key.status === 'cooling') span.append(button('Clear cooldown', setStatus('active')));
    if (key.status === 'disabled') span.append(button('Enable', setStatus('active')));
    if (key.status === 'active' || key.status === 'cooling')
      span.append(button('Disable', setStatus('disabled')));
    if (key.source === 'admin') {
      span.append(
        button(
          'Delete',
          () => {
            if (!window.confirm(`Delete upstream key …${key.fingerprint_suffix}? This cannot be undone.`))
              return;
            act(() => api('DELETE', `/upstream-keys/${key.id}`))();
          },
          'small danger',
        ),
      );
    }
    return span;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const f = form.elements;
    const azure = f.provider.value === 'azure';
    busy(form, form.querySelector('button[type=submit]'), async () => {
      await api('POST', '/upstream-keys', {
        body: {
          provider: f.provider.value,
          key: f.key.value.trim(),
          ...(azure
            ? { endpoint: f.endpoint.value.trim() || null, deployments: splitList(f.deployments.value) }
            : {}),
        },
      });
      form.reset();
      syncProvider();
      await pager.reset();
    });
  });

  return {
    show: () => pager.reset(),
    clear: () => {
      pager.clear();
      resetForm(form);
      syncProvider();
    },
  };
}
