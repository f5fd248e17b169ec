import { readFileSync } from 'node:fs';
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
