/**
 * Reading the monitoring files the way the tests need them: the alert rules and their unit tests
 * (YAML), the metric names a PromQL expression refers to, Grafana's query variables replaced for
 * Prometheus, and the sample names in a Prometheus text exposition.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// js-yaml comes with @pulumi/pulumi (see test/unit/infra/stack-files.ts).
const yaml = createRequire(import.meta.url)('js-yaml') as { load(text: string): unknown };

export const RULES_FILE = fileURLToPath(
  new URL('../../monitoring/rules/gpt-proxy.rules.yml', import.meta.url),
);
export const RULE_TESTS_FILE = fileURLToPath(
  new URL('../../monitoring/rules/gpt-proxy.test.yml', import.meta.url),
);

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function readYamlFile(path: string): unknown {
  return yaml.load(readFileSync(path, 'utf8'));
}

export function alertRules(): AlertRule[] {
  const file = readYamlFile(RULES_FILE) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

/** The alerts the promtool unit tests expect to fire at least once. */
export function alertsTestedFiring(): Set<string> {
  const file = readYamlFile(RULE_TESTS_FILE) as {
    tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
  };
  const names = file.tests.flatMap((t) =>
    (t.alert_rule_test ?? []).filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname),
  );
  return new Set(names);
}

/** Prometheus's own series, which no exporter serves. */
export const PROMETHEUS_INTERNAL = ['up', 'ALERTS'] as const;

/**
 * The metric names an expression selects: our `gpt_proxy_*`, the exporter's `nginx_*`, and
 * Prometheus's `up` / `ALERTS` (written with a selector, `up{…}`).
 */
export function metricNames(expr: string): string[] {
  const ours = expr.match(/\b(?:gpt_proxy|nginx)_[a-z0-9_]+\b/g) ?? [];
  const internal = PROMETHEUS_INTERNAL.filter((n) => new RegExp(`\\b${n}\\s*\\{`).test(expr));
  return [...new Set([...ours, ...internal])];
}

/** Grafana's variables replaced by values Prometheus accepts (for checking and running queries). */
export function forPrometheus(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '5m');
}

/** The names of the samples (not just the HELP lines) in a text exposition. */
export function sampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m?.[1]) names.add(m[1]);
  }
  return names;
}
