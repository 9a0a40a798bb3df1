// Small DOM helpers. Text always goes in through textContent, never as HTML.

/** Builds an element: `props` may hold className, text, title, dataset, attrs and on (events). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  if (props.title) node.title = props.title;
  for (const [name, value] of Object.entries(props.dataset ?? {})) node.dataset[name] = String(value);
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, String(value));
  for (const [event, handler] of Object.entries(props.on ?? {})) node.addEventListener(event, handler);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function clear(node) {
  node.replaceChildren();
}

export function badge(text, kind = text) {
  return el('span', { className: `badge ${kind}`, text });
}

export function button(text, onClick, className = 'small quiet') {
  return el('button', { className, text, attrs: { type: 'button' }, on: { click: onClick } });
}

const numberFormat = new Intl.NumberFormat();
export const formatNumber = (n) => (n === null || n === undefined ? '' : numberFormat.format(n));

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)} UTC`;
}

/** `<input type="datetime-local">` holds local time; the API wants an instant. */
export const localToIso = (value) => (value ? new Date(value).toISOString() : null);

export function isoToLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "a, b*" → ["a", "b*"]; empty → null (every model / no list). */
export function splitList(text) {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length > 0 ? items : null;
}

/** An empty number field means "the default" (null). */
export const numberOrNull = (value) => (value === '' ? null : Number(value));

/**
 * Shows an error in the form's `.error` line (the API's message names the field). An AbortError
 * is a call of a session that has ended: the page was cleared, so nothing of it is shown.
 */
export function showError(container, err) {
  if (err?.name === 'AbortError') return;
  const line = container.querySelector('.error');
  if (line) line.textContent = err ? err.message : '';
  if (err && !line) console.error(err);
}

/** Empties a form and its error line (on sign-out: nothing typed by one admin is left to the next). */
export function resetForm(form) {
  form.reset();
  showError(form, null);
}

/** Runs `work` with the button disabled, showing a failure in `container`. */
export async function busy(container, buttonNode, work) {
  showError(container, null);
  if (buttonNode) buttonNode.disabled = true;
  try {
    return await work();
  } catch (err) {
    showError(container, err);
    return undefined;
  } finally {
    if (buttonNode) buttonNode.disabled = false;
  }
}

/** A table row; a cell is a string, a node, or `{text|node, className}`. */
export function row(cells, dataset = {}) {
  const tr = el('tr', { dataset });
  for (const cell of cells) {
    if (cell instanceof Node) tr.append(el('td', {}, cell));
    else if (cell && typeof cell === 'object')
      tr.append(el('td', { className: cell.className, text: cell.text }, cell.node));
    else tr.append(el('td', { text: cell ?? '' }));
  }
  return tr;
}

export function emptyRow(tbody, columns, text) {
  tbody.append(el('tr', {}, el('td', { className: 'empty', text, attrs: { colspan: columns } })));
}
