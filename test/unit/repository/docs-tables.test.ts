import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { answerForDecision, statusForDenial } from '../../../src/authz/answer-for-decision.js';
import type { DenialCode } from '../../../src/authz/decision.js';
import type { Command, CommandContext } from '../../../src/command/command.js';
import { OWN_COMMANDS } from '../../../src/cli/own-commands.js';
import { SIDECAR_COMMANDS } from '../../../src/cli/sidecar-commands.js';
import { commandTable as DEMO_COMMANDS } from '../../../src/demo/demo-commands.js';
import { createAuthzMetrics } from '../../../src/metrics/authz-metrics.js';
import { FINDING_CODES } from '../../../src/policy/finding-codes.js';
import { captureIo } from '../../kit/capture-io.js';

/*
 * The documented tables that mirror code, each tied to its source both ways: every code, command, flag,
 * variable, metric or folder the code has is documented, and every one documented exists. When one fails,
 * fix the table (or the code, if the table says what it should do).
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

/** The cells of a Markdown table row (`\|` is a pipe inside a cell). */
function cells(row: string): string[] {
  return row
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

/** The body rows of the first table after `marker` (a heading or a header cell), as cells. */
function tableAfter(doc: string, marker: string): string[][] {
  const start = doc.indexOf(marker);
  expect(start, `"${marker}" not found`).toBeGreaterThanOrEqual(0);
  const lines = doc.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(cells(line));
  }
  return rows;
}

/** The `code spans` of a cell. */
const codeSpans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);

const sorted = (items: Iterable<string>): string[] => [...items].sort();

describe('docs/policy-checks.md: the finding codes of src/policy/finding-codes.ts', () => {
  const doc = read('docs/policy-checks.md');

  it('lists every code of the registry, and no other, with its level and whether a route may accept it', () => {
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` +\| (error|warning|notice) +\| (yes|no)[^|]*\|$/gm)].map(
      ([, code, level, route]) => `${code} ${level} ${route === 'yes'}`,
    );
    const registry = Object.entries(FINDING_CODES).map(
      ([code, entry]) => `${code} ${entry.level} ${entry.route}`,
    );
    expect(sorted(rows)).toEqual(sorted(registry));
  });

  it('has a section for every code, and no other, headed with its level', () => {
    const sections = [...doc.matchAll(/^### `([a-z_]+)` \((error|warning|notice)\)$/gm)].map(
      ([, code, level]) => `${code} ${level}`,
    );
    const registry = Object.entries(FINDING_CODES).map(([code, entry]) => `${code} ${entry.level}`);
    expect(sorted(sections)).toEqual(sorted(registry));
  });
});

/**
 * Every denial code (`DenialCode`, src/authz/decision.ts). `satisfies` makes the type checker (`npm run
 * typecheck`) refuse this list when a code is added to or removed from the type.
 */
const DENIAL_CODES = Object.keys({
  no_service: true,
  service_unknown: true,
  no_route: true,
  path_invalid: true,
  credentials_missing: true,
  credentials_malformed: true,
  scheme_not_accepted: true,
  dpop_proof_missing: true,
  dpop_proof_multiple: true,
  dpop_proof_malformed: true,
  dpop_proof_type_invalid: true,
  dpop_proof_algorithm_not_allowed: true,
  dpop_proof_key_invalid: true,
  dpop_proof_signature_invalid: true,
  dpop_proof_claims_invalid: true,
  dpop_proof_method_mismatch: true,
  dpop_proof_uri_mismatch: true,
  dpop_proof_expired: true,
  dpop_proof_issued_in_future: true,
  dpop_proof_token_hash_mismatch: true,
  dpop_proof_replayed: true,
  dpop_nonce_missing: true,
  dpop_nonce_invalid: true,
  dpop_proof_quota_exceeded: true,
  dpop_replay_cache_full: true,
  dpop_replay_store_unavailable: true,
  binding_dpop_scheme_required: true,
  binding_token_not_dpop_bound: true,
  binding_dpop_key_mismatch: true,
  binding_certificate_missing: true,
  binding_certificate_invalid: true,
  binding_certificate_mismatch: true,
  binding_not_accepted: true,
  binding_required: true,
  token_too_large: true,
  token_malformed: true,
  token_issuer_unknown: true,
  token_algorithm_not_allowed: true,
  token_key_unknown: true,
  token_signature_invalid: true,
  token_expired: true,
  token_not_yet_valid: true,
  token_audience_mismatch: true,
  token_type_invalid: true,
  token_claims_invalid: true,
  token_lifetime_exceeded: true,
  token_issued_in_future: true,
  insufficient_scope: true,
  insufficient_user_authentication: true,
  keys_unavailable: true,
  service_unavailable: true,
} satisfies Record<DenialCode, true>) as DenialCode[];

/** The reason of an allowed decision in the log; not a denial. */
const ALLOWED = 'allowed';

describe('docs/answers.md: the decision reasons and their answers (src/authz/answer-for-decision.ts)', () => {
  const rows = tableAfter(read('docs/answers.md'), '| Situation');
  const documented = rows.flatMap((row) => codeSpans(row[1] ?? '').map((code) => ({ code, row })));

  it('has the columns it is read by', () => {
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.every((row) => row.length === 5)).toBe(true);
  });

  it('gives every denial code one row, and names no code the decision core does not have', () => {
    const codes = documented.map(({ code }) => code);
    expect(sorted(codes.filter((code) => code !== ALLOWED))).toEqual(sorted(DENIAL_CODES));
    expect(codes.filter((code) => code === ALLOWED)).toHaveLength(1);
    for (const code of codes) {
      if (code !== ALLOWED) expect(() => statusForDenial(code as DenialCode), code).not.toThrow();
    }
  });

  it.each(DENIAL_CODES)('answers %s with the status, body error and challenge its row says', (code) => {
    const row = documented.find((entry) => entry.code === code)?.row;
    expect(row, code).toBeDefined();
    const [, , status, challenge, bodyError] = row!;
    const answer = answerForDecision({ kind: 'deny', code, description: 'why' }, 'bank-api');
    if (answer.kind !== 'deny') throw new Error(`${code} is not a denial`);

    expect(status!.slice(0, 3), code).toBe(String(answer.status));
    expect(codeSpans(bodyError!), code).toEqual([JSON.parse(answer.body).error]);
    const challenged = answer.headers.some(([name]) => name === 'www-authenticate');
    expect(challenge === 'none', `${code}: WWW-Authenticate "${challenge}"`).toBe(!challenged);
  });
});

/** Every command of the CLI: the sidecar's, the demo's and the CLI's own. */
const COMMANDS: readonly Command[] = [
  ...SIDECAR_COMMANDS.commands,
  ...DEMO_COMMANDS.commands,
  ...OWN_COMMANDS,
];

/** What `authz` itself answers, besides the commands of the tables (src/cli/main.ts). */
const BUILT_INS = ['help', '--version'];

/** Where each command reads its environment variables. */
const CONFIG_SOURCES: Readonly<Record<string, string>> = {
  serve: 'src/cli/serve-config.ts',
  'check-policy': 'src/policy-tools/check-policy-command.ts',
  explain: 'src/policy-tools/explain-command.ts',
  test: 'src/policy-tools/test-command.ts',
  diff: 'src/policy-tools/diff-command.ts',
  owners: 'src/policy-tools/owners-command.ts',
  bank: 'src/demo/bank/bank-config.ts',
  statements: 'src/demo/statements/statements-config.ts',
  'dev-token': 'src/demo/dev-token/dev-token-config.ts',
  'dev-idp': 'src/demo/idp/dev-idp-config.ts',
  'demo-client': 'src/demo/walkthrough/demo-client-config.ts',
  completion: 'src/cli/completion-command.ts',
};

const ENV_NAME = /\b(?:AUTHZ|BANK|STATEMENTS)_[A-Z0-9_]+\b/g;

/**
 * The flags a command's parser takes: its answer to an unknown flag lists them (src/args/parse-command-args.ts),
 * and parsing comes before anything else a command does.
 */
async function parserFlags(command: Command): Promise<string[]> {
  const context: CommandContext = {
    env: {},
    io: captureIo().io,
    interactive: () => false,
    onShutdown: () => undefined,
    onReload: () => undefined,
    commandTables: async () => [],
  };
  const error = await command.run(['--zz-no-such-flag'], context).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof UsageError))
    throw new Error(`${command.name}: expected a usage error, got ${String(error)}`);
  if (error.message.endsWith('(it takes no options)')) return [];
  const list = /\(options: ([^)]*)\)$/.exec(error.message)?.[1];
  if (list === undefined) throw new Error(`${command.name}: no list of options in "${error.message}"`);
  return list.split(', ');
}

describe('docs/cli.md: the commands, flags and environment variables of the CLI', () => {
  const doc = read('docs/cli.md');
  const rows = doc
    .split('\n')
    .filter((line) => line.startsWith('| `authz '))
    .map(cells);
  const documented = new Map(
    rows.map((row) => {
      const usage = codeSpans(row[0]!)[0]!;
      return [usage.split(' ')[1]!, { usage, row: row.join(' | ') }] as const;
    }),
  );

  it('has a row for every command and built-in, and no other', () => {
    expect(rows.length).toBe(documented.size);
    expect(sorted(documented.keys())).toEqual(
      sorted([...COMMANDS.map((command) => command.name), ...BUILT_INS]),
    );
  });

  it.each(COMMANDS.map((command) => [command.name, command] as const))(
    '%s: the row lists exactly the flags its parser takes, and every flag of its usage',
    async (name, command) => {
      const usage = documented.get(name)?.usage ?? '';
      const flags = new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? []);
      expect(sorted(flags), name).toEqual(sorted(await parserFlags(command)));
      for (const flag of command.usage.flatMap((line) => line.match(/--[a-z][a-z0-9-]*/g) ?? [])) {
        expect(flags, `${name}: ${flag}`).toContain(flag);
      }
    },
  );

  it.each(COMMANDS.map((command) => [command.name, command] as const))(
    '%s: the row names exactly the environment variables the command reads',
    (name, command) => {
      const source = CONFIG_SOURCES[name];
      expect(source, `no source of ${name}'s settings listed here`).toBeDefined();
      const readVariables = new Set(
        [...read(source!).matchAll(/'((?:AUTHZ|BANK|STATEMENTS)_[A-Z0-9_]+)'/g)].map((match) => match[1]!),
      );
      const named = new Set(documented.get(name)?.row.match(ENV_NAME) ?? []);
      expect(sorted(named), name).toEqual(sorted(readVariables));
      for (const variable of command.summary.join(' ').match(ENV_NAME) ?? []) {
        expect(named, `${name}: ${variable}`).toContain(variable);
      }
    },
  );
});

describe('docs/operations.md: the metrics of src/metrics/authz-metrics.ts', () => {
  const rows = tableAfter(read('docs/operations.md'), '## Metrics');
  const documented = new Map(rows.map((row) => [codeSpans(row[0]!)[0]!, row[1]!]));

  it('lists every authz_ metric the server registers, and no other', async () => {
    const { registry } = createAuthzMetrics();
    const names = (await registry.getMetricsAsJSON())
      .map((metric) => metric.name)
      .filter((name) => name.startsWith('authz_'));
    expect(sorted(documented.keys())).toEqual(sorted(names));
  });

  it('gives each its labels: the names in code spans outside parentheses', () => {
    const { registry } = createAuthzMetrics();
    for (const [name, labelsCell] of documented) {
      const metric = registry.getSingleMetric(name) as unknown as
        { labelNames?: readonly string[] } | undefined;
      const labels = codeSpans(labelsCell.replace(/\([^)]*\)/g, ''));
      expect(sorted(labels), name).toEqual(sorted(metric?.labelNames ?? []));
    }
  });
});

describe('docs/architecture.md: the folders of src/', () => {
  it('names every folder of src/ and src/demo/ in its layout table, and no other', () => {
    const rows = tableAfter(read('docs/architecture.md'), '| Wing');
    const documented = rows.flatMap((row) => codeSpans(row[1] ?? ''));
    const folders = (dir: string): string[] =>
      readdirSync(path.join(ROOT, dir), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => `${dir}/${entry.name}`);
    const expected = [...folders('src').filter((folder) => folder !== 'src/demo'), ...folders('src/demo')];
    expect(sorted(documented)).toEqual(sorted(expected));
  });
});
