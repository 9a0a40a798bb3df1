// The request log: newest first, filtered by key, user and dates; no bodies are ever stored.
import { api } from '../api.js';
import { formatNumber, formatTime, resetForm, row } from '../dom.js';
import { createPager } from '../pager.js';

const DAY_MS = 86_400_000;
const nextDay = (value) =>
  new Date(new Date(`${value}T00:00:00Z`).getTime() + DAY_MS).toISOString().slice(0, 10);

export function requestsView(section) {
  const form = section.querySelector('#requests-form');
  let filters = {};

  const pager = createPager({
    section,
    columns: 9,
    emptyText: 'No requests match.',
    fetchPage: (after) => api('GET', '/requests', { query: { ...filters, limit: 50, after } }),
    renderRow: (r) =>
      row(
        [
          formatTime(r.created_at),
          { text: r.request_id, className: 'mono' },
          { text: r.key_prefix ? `${r.key_prefix} (#${r.key_id})` : (r.key_id ?? ''), className: 'mono' },
          r.username ?? r.user_id ?? '',
          r.route,
          r.model ?? '',
          { text: r.status_code, className: 'num' },
          { text: `${formatNumber(r.total_tokens)}${r.estimated ? '*' : ''}`, className: 'num' },
          { text: formatNumber(r.latency_ms), className: 'num' },
        ],
        { id: r.id },
      ),
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const f = form.elements;
    filters = {
      key_id: f.key_id.value,
      user_id: f.user_id.value,
      from: f.from.value,
      to: f.to.value ? nextDay(f.to.value) : '',
    };
    pager.reset();
  });

  return {
    show: () => pager.reset(),
    clear: () => {
      pager.clear();
      resetForm(form);
      filters = {};
    },
  };
}
