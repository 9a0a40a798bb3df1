// Usage: totals, a per-day chart and a table grouped by day, model, key or user.
import { api } from '../api.js';
import { renderBarChart } from '../chart.js';
import { busy, clear, el, emptyRow, formatNumber, resetForm, row } from '../dom.js';

const DAY_MS = 86_400_000;
const day = (date) => date.toISOString().slice(0, 10);
const nextDay = (value) => day(new Date(new Date(`${value}T00:00:00Z`).getTime() + DAY_MS));

const GROUP_NAMES = { day: 'Day', model: 'Model', key: 'API key', user: 'User' };

function groupLabel(groupBy, item) {
  if (groupBy === 'model') return item.group ?? '(no model)';
  if (groupBy === 'key') return item.label ? `${item.label} (#${item.group})` : `key #${item.group ?? '?'}`;
  if (groupBy === 'user') return item.label ?? `user #${item.group ?? '?'}`;
  return item.group;
}

export function usageView(section) {
  const form = section.querySelector('#usage-form');
  const totals = section.querySelector('#usage-totals');
  const chart = section.querySelector('#usage-chart');
  const tbody = section.querySelector('#usage-table tbody');
  const groupHeader = section.querySelector('#usage-table th.group-name');
  let last = null;

  // The last 30 days, up to today.
  const defaultRange = () => {
    const today = new Date();
    form.elements.to.value = day(today);
    form.elements.from.value = day(new Date(today.getTime() - 29 * DAY_MS));
  };
  defaultRange();

  function drawChart() {
    if (!last) return;
    const metric = form.elements.metric.value;
    const unit = metric === 'requests' ? 'requests' : 'tokens';
    const points = last.series.map((s) => ({ label: s.day.slice(5), value: s[metric] }));
    renderBarChart(chart, points, formatNumber, unit);
  }

  function render(usage) {
    last = usage;
    clear(totals);
    const t = usage.totals;
    for (const [label, value] of [
      ['Requests', t.requests],
      ['Errors', t.errors],
      ['Prompt tokens', t.prompt_tokens],
      ['Completion tokens', t.completion_tokens],
      ['Total tokens', t.total_tokens],
    ]) {
      totals.append(el('div', {}, el('span', { text: label }), el('strong', { text: formatNumber(value) })));
    }
    drawChart();
    groupHeader.textContent = GROUP_NAMES[usage.group_by];
    clear(tbody);
    for (const item of usage.data) {
      tbody.append(
        row([
          groupLabel(usage.group_by, item),
          { text: formatNumber(item.requests), className: 'num' },
          { text: formatNumber(item.errors), className: 'num' },
          { text: formatNumber(item.prompt_tokens), className: 'num' },
          { text: formatNumber(item.completion_tokens), className: 'num' },
          { text: formatNumber(item.total_tokens), className: 'num' },
        ]),
      );
    }
    if (usage.data.length === 0) emptyRow(tbody, 6, 'No requests in this range.');
  }

  const load = () =>
    busy(form, form.querySelector('button[type=submit]'), async () => {
      const f = form.elements;
      render(
        await api('GET', '/usage', {
          query: { group_by: f.group_by.value, from: f.from.value, to: nextDay(f.to.value) },
        }),
      );
    });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  form.elements.metric.addEventListener('change', drawChart);
  window.addEventListener('resize', drawChart);

  return {
    show: load,
    clear: () => {
      last = null;
      clear(totals);
      clear(chart);
      clear(tbody);
      resetForm(form);
      defaultRange();
    },
  };
}
