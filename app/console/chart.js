// A hand-drawn SVG bar chart: one bar per point, a few grid lines, sparse axis labels.

const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 240;
const MARGIN = { top: 12, right: 12, bottom: 28, left: 64 };

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Grid spacing for four steps up to `max`: a whole 1/2/5 × 10^n, so the axis reads 0, 2, 4, 6, 8
 * rather than 0, 1.75, 3.5 (requests and tokens are counts).
 */
export function gridStep(max) {
  const rough = Math.max(1, max / 4);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  for (const step of [1, 2, 5, 10]) if (step * magnitude >= rough) return step * magnitude;
  return 10 * magnitude;
}

/**
 * Draws `points` ([{label, value}]) into `svg` as bars; `format` renders numbers for the axis
 * and the hover titles. Redraws from scratch each time.
 */
export function renderBarChart(svg, points, format, unit) {
  svg.replaceChildren();
  const width = Math.max(svg.clientWidth || 0, 320);
  svg.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const step = gridStep(Math.max(0, ...points.map((p) => p.value)));
  const top = step * 4;
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH;

  for (let i = 0; i <= 4; i++) {
    const value = step * i;
    svg.append(
      svgEl('line', { class: 'grid', x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value) }),
    );
    svg.append(
      svgEl(
        'text',
        { class: 'axis-label', x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end' },
        format(value),
      ),
    );
  }
  if (points.length === 0) return;

  const slot = plotW / points.length;
  const barW = Math.max(1, slot * 0.78);
  const labelEvery = Math.ceil(points.length / Math.max(1, Math.floor(plotW / 80)));
  points.forEach((point, i) => {
    const x = MARGIN.left + i * slot + (slot - barW) / 2;
    const h = Math.max(0, MARGIN.top + plotH - y(point.value));
    const bar = svgEl('rect', { class: 'bar', x, y: MARGIN.top + plotH - h, width: barW, height: h });
    bar.append(svgEl('title', {}, `${point.label}: ${format(point.value)} ${unit}`));
    svg.append(bar);
    // Counted from the end, so the latest day always has its label.
    if ((points.length - 1 - i) % labelEvery === 0) {
      svg.append(
        svgEl(
          'text',
          { class: 'axis-label', x: x + barW / 2, y: HEIGHT - 8, 'text-anchor': 'middle' },
          point.label,
        ),
      );
    }
  });
  if (points.every((p) => p.value === 0)) {
    svg.append(
      svgEl(
        'text',
        {
          class: 'axis-label',
          x: MARGIN.left + plotW / 2,
          y: MARGIN.top + plotH / 2,
          'text-anchor': 'middle',
        },
        'No usage in this range',
      ),
    );
  }
}
