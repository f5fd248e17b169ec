import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../kit/process.js';
import { runPromtool } from '../kit/promtool.js';

/*
 * The alert rules of deploy/monitoring/, checked by Prometheus's own promtool (a pinned build:
 * scripts/install-promtool.sh): the rules file loads, its unit tests pass, every alert is tested both ways
 * and carries what an on-call person needs, and the PrometheusRule holds the same groups.
 */

const MONITORING = 'deploy/monitoring';
const RULES_FILE = `${MONITORING}/alerts.rules.yaml`;
const TESTS_FILE = `${MONITORING}/alerts.test.yaml`;

const readYaml = (file: string): unknown => parse(readFileSync(path.join(repoRoot, file), 'utf8'));

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleGroup {
  readonly name: string;
  readonly rules: readonly Rule[];
}
interface AlertCase {
  readonly alertname: string;
  readonly exp_alerts: readonly {
    exp_labels: Record<string, string>;
    exp_annotations?: Record<string, string>;
  }[];
}

const groups = (readYaml(RULES_FILE) as { groups: RuleGroup[] }).groups;
const alerts = groups.flatMap((group) => group.rules.filter((rule) => rule.alert !== undefined));
const alertCases = (readYaml(TESTS_FILE) as { tests: { alert_rule_test?: AlertCase[] }[] }).tests.flatMap(
  (test) => test.alert_rule_test ?? [],
);

/** The anchors GitHub gives the headings of a Markdown file (lower case, punctuation dropped, spaces as -). */
function headingAnchors(file: string): Set<string> {
  const text = readFileSync(path.join(repoRoot, file), 'utf8');
  return new Set(
    [...text.matchAll(/^#{1,6} (.+)$/gm)].map((match) =>
      match[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    ),
  );
}

describe('deploy/monitoring/alerts.rules.yaml, with promtool', () => {
  it('loads (promtool check rules)', () => {
    const run = runPromtool(['check', 'rules', RULES_FILE]);
    expect(run.stderr + run.stdout).toContain(`SUCCESS: ${alerts.length + 2} rules found`);
    expect(run.status).toBe(0);
  });

  it('passes its unit tests (promtool test rules alerts.test.yaml)', () => {
    const run = runPromtool(['test', 'rules', TESTS_FILE]);
    expect(run.stdout + run.stderr).toContain('SUCCESS');
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });

  it('fails a unit test whose expected annotation is wrong (the tests above could fail)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'authz-alerts-test-'));
    try {
      const text = readFileSync(path.join(repoRoot, TESTS_FILE), 'utf8')
        .replace('- alerts.rules.yaml', `- ${path.join(repoRoot, RULES_FILE)}`)
        .replace('has been 248.5ms', 'has been 250ms');
      writeFileSync(path.join(dir, 'alerts.test.yaml'), text);
      const run = runPromtool(['test', 'rules', path.join(dir, 'alerts.test.yaml')]);
      expect(run.stdout + run.stderr).toContain('FAILED');
      expect(run.status).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has, for every alert, a case where it fires with its labels and annotations, and one where it does not', () => {
    for (const rule of alerts) {
      const cases = alertCases.filter((test) => test.alertname === rule.alert);
      const firing = cases.flatMap((test) => test.exp_alerts);
      expect(firing.length, `${rule.alert} fires in a case`).toBeGreaterThan(0);
      for (const alert of firing) {
        expect(alert.exp_labels['severity'], rule.alert).toBe(rule.labels?.['severity']);
        expect(Object.keys(alert.exp_annotations ?? {}).sort(), rule.alert).toEqual(
          Object.keys(rule.annotations ?? {}).sort(),
        );
      }
      expect(
        cases.some((test) => test.exp_alerts.length === 0),
        `${rule.alert} is silent in a case`,
      ).toBe(true);
    }
  });
});

describe('every alert, for the person it pages', () => {
  const anchors = headingAnchors('docs/operations.md');

  it.each(alerts.map((rule) => [rule.alert!, rule] as const))(
    '%s waits (for:), has a severity, a summary, a description and a runbook section in docs/operations.md',
    (name, rule) => {
      expect(rule.for, name).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], name).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], name).toBeTruthy();
      expect(rule.annotations?.['description'], name).toBeTruthy();
      expect(rule.annotations?.['runbook_url']).toBe(`docs/operations.md#${name.toLowerCase()}`);
      expect(anchors, name).toContain(name.toLowerCase());
    },
  );
});

describe('deploy/monitoring/prometheus-rule.yaml', () => {
  it("holds exactly the rules file's groups, as a monitoring.coreos.com/v1 PrometheusRule", () => {
    const rule = readYaml(`${MONITORING}/prometheus-rule.yaml`) as {
      apiVersion: string;
      kind: string;
      spec: { groups: unknown };
    };
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(rule.kind).toBe('PrometheusRule');
    expect(rule.spec.groups).toEqual(groups);
  });
});

/** The first column's code spans of the Markdown table after `heading` in docs/operations.md, or its plain text. */
function firstColumnAfter(heading: string): string[] {
  const text = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  const after = text.slice(text.indexOf(`\n${heading}\n`));
  const table = /\n(\|.*\|\n)+/.exec(after)![0].trim().split('\n').slice(2);
  return table.map((row) =>
    row
      .split('|')[1]!
      .trim()
      .replace(/^`(.*)`$/, '$1'),
  );
}

describe('deploy/monitoring/dashboard.json', () => {
  interface Panel {
    readonly type: string;
    readonly title: string;
    readonly datasource?: { readonly uid: string };
    readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
    readonly targets?: readonly { readonly expr: string; readonly datasource?: { readonly uid: string } }[];
  }
  const dashboard = JSON.parse(readFileSync(path.join(repoRoot, MONITORING, 'dashboard.json'), 'utf8')) as {
    schemaVersion: number;
    panels: Panel[];
    templating: { list: { name: string; type: string; query?: unknown }[] };
  };
  const queried = dashboard.panels.filter((panel) => panel.type !== 'row');

  it('asks for its Prometheus data source in a variable, and every panel and query uses it', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    );
    for (const panel of queried) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      for (const target of panel.targets ?? [])
        expect(target.datasource?.uid, panel.title).toBe('${datasource}');
    }
  });

  it('lays its panels out on a 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let column = x; column < x + w; column++) {
        for (let line = y; line < y + h; line++) {
          const cell = `${column},${line}`;
          expect(cells.has(cell), `${panel.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it("shows what issue 22 asks for: decisions by outcome and reason, latency, key sets, policy reloads, cache hit ratio, workers, Envoy's ext_authz", () => {
    const queries = queried.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)).join('\n');
    for (const metric of [
      'authz_decisions_total',
      'authz_decision_duration_seconds_bucket',
      'authz_jwks_keys_usable',
      'authz_jwks_fetches_total',
      'authz_policy_reloads_total',
      'authz_token_cache_hits_total',
      'authz_workers_serving',
      'envoy_http_ext_authz_ok',
      'envoy_http_ext_authz_denied',
      'envoy_http_ext_authz_error',
      'envoy_http_ext_authz_failure_mode_allowed',
    ]) {
      expect(queries).toContain(metric);
    }
  });

  it('has each panel described in docs/operations.md, "The dashboard", and no other', () => {
    expect(firstColumnAfter('### The dashboard')).toEqual(queried.map((panel) => panel.title));
  });
});

describe('docs/operations.md, "Alerts"', () => {
  it('lists every alert in its table, in the order of the rules file', () => {
    expect(firstColumnAfter('### Alerts')).toEqual(alerts.map((rule) => rule.alert));
  });
});
