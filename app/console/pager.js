// "Load more" paging over the contract's `?limit=&after=` → `{data, has_more}` lists.
import { clear, emptyRow, showError } from './dom.js';

/**
 * Keeps one table in step with a paged list: `reset()` loads the first page, the view's
 * "Load more" button appends the next. `fetchPage(after)` returns the API's page object;
 * `renderRow(item)` returns a <tr>.
 *
 * One load at a time: "Load more" is disabled (and a click ignored) while any page loads, since a
 * second click would fetch the same page again, and one during a reset would use the old list's
 * cursor and append a page that skips rows. A reset supersedes whatever was loading: an older
 * load's answer is dropped (`generation`).
 */
export function createPager({ section, fetchPage, renderRow, columns, emptyText }) {
  const tbody = section.querySelector('tbody');
  const more = section.querySelector('button.more');
  let after;
  let generation = 0;
  let loading = false;

  async function load(reset) {
    if (!reset && loading) return;
    const mine = reset ? ++generation : generation;
    loading = true;
    more.disabled = true;
    try {
      const page = await fetchPage(reset ? undefined : after);
      if (mine !== generation) return; // a newer reset replaced this list
      if (reset) clear(tbody);
      for (const item of page.data) tbody.append(renderRow(item));
      if (reset && page.data.length === 0) emptyRow(tbody, columns, emptyText);
      after = page.data.length > 0 ? page.data[page.data.length - 1].id : after;
      more.hidden = !page.has_more;
    } catch (err) {
      if (mine === generation) showError(section, err);
    } finally {
      // A superseded load leaves the flag to the load that replaced it.
      if (mine === generation) {
        loading = false;
        more.disabled = false;
      }
    }
  }

  /** Empties the table and drops any load under way (on sign-out). */
  function forget() {
    generation++;
    loading = false;
    more.disabled = false;
    more.hidden = true;
    after = undefined;
    clear(tbody);
  }

  more.addEventListener('click', () => load(false));
  return { reset: () => load(true), clear: forget };
}
