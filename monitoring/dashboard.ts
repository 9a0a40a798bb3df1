import { type PanelSpec, type Query, ROWS, type RowSpec } from './dashboard-panels.ts';

// Grafana's JSON model of the gpt-proxy dashboard, built from dashboard-panels.ts: rows of panels
// laid out left to right in Grafana's 24-column grid, every query against the one provisioned
// Prometheus data source (grafana.ts). Read-only: it is provisioned, not edited in the UI.

export const DASHBOARD_UID = 'gpt-proxy';
export const DATASOURCE = { type: 'prometheus', uid: 'prometheus' } as const;
const GRID_COLUMNS = 24;
const PANEL_HEIGHT = 8;

export type JsonObject = { [key: string]: unknown };

function target(q: Query, i: number): JsonObject {
  return {
    refId: String.fromCharCode(65 + i),
    datasource: DATASOURCE,
    expr: q.expr,
    legendFormat: q.legend ?? '__auto',
    instant: q.instant === true,
    range: q.instant !== true,
    ...(q.instant && !q.legend ? { format: 'table' } : {}),
  };
}

function options(p: PanelSpec): JsonObject {
  const reduce = { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false } };
  switch (p.type) {
    case 'timeseries':
      return {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
        tooltip: { mode: 'multi', sort: 'desc' },
      };
    case 'stat':
      return { ...reduce, colorMode: 'background', graphMode: 'none', textMode: 'value_and_name' };
    case 'bargauge':
      return { ...reduce, orientation: 'horizontal', displayMode: 'gradient', showUnfilled: true };
    case 'table':
      return { showHeader: true, cellHeight: 'sm' };
  }
}

function fieldConfig(p: PanelSpec): JsonObject {
  const steps = (p.thresholds ?? [[null, 'green']]).map(([value, color]) => ({ value, color }));
  const mappings = p.mappings
    ? [
        {
          type: 'value',
          options: Object.fromEntries(
            Object.entries(p.mappings).map(([value, m], index) => [value, { ...m, index }]),
          ),
        },
      ]
    : [];
  return {
    defaults: {
      ...(p.unit ? { unit: p.unit } : {}),
      thresholds: { mode: 'absolute', steps },
      mappings,
      ...(p.type === 'stat' || p.type === 'bargauge' ? { color: { mode: 'thresholds' } } : {}),
    },
    overrides: [],
  };
}

/** Places the rows one below the other and each row's panels left to right, wrapping at 24. */
function layout(rows: RowSpec[]): JsonObject[] {
  const panels: JsonObject[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      panels: [],
      gridPos: { x: 0, y, w: 24, h: 1 },
    });
    y += 1;
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const h = p.h ?? PANEL_HEIGHT;
      if (x + p.w > GRID_COLUMNS) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      panels.push({
        id: id++,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { x, y, w: p.w, h },
        targets: p.queries.map(target),
        fieldConfig: fieldConfig(p),
        options: options(p),
      });
      x += p.w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return panels;
}

/** The dashboard as Grafana's file provisioning reads it. */
export function dashboard(): JsonObject {
  return {
    uid: DASHBOARD_UID,
    title: 'gpt-proxy',
    description:
      'Requests, errors, latency, tokens, upstream keys, limits, dependencies and the certificate.',
    tags: ['gpt-proxy'],
    timezone: 'utc',
    editable: false,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    templating: { list: [] },
    annotations: { list: [] },
    links: [],
    panels: layout(ROWS),
  };
}

/** Every PromQL expression on the dashboard (for the tests). */
export function dashboardQueries(): string[] {
  return ROWS.flatMap((r) => r.panels.flatMap((p) => p.queries.map((q) => q.expr)));
}
