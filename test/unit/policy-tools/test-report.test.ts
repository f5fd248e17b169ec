import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/args/usage-error.js';
import { testCommand } from '../../../src/policy-tools/test-command.js';
import { escapeXml } from '../../../src/policy-tools/test-junit.js';
import { cutAtDifference, type TestRunReport } from '../../../src/policy-tools/test-report.js';
import { claimsReadBy, unreadClaimWarnings } from '../../../src/policy-tools/test-token-claims.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { createTempDir, writeTextFile } from '../../kit/authz-harness.js';
import { captureIo } from '../../kit/capture-io.js';
import { compileRoutes, DEMO_ISSUER, demoPolicyText, servicesPolicyText } from '../../kit/inline-policy.js';

/*
 * `authz test` warnings, --strict, --json, --junit and --run (docs/policy-tests.md), on test files
 * written to a temporary folder next to a policy with the demo issuer.
 */

const ROUTES = [
  '{ methods: [GET], path: /balance, scopes: [view:balance] }',
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
];

const LONG_NAME = `a case whose name goes on ${'and on '.repeat(20)}to the end`;

/** Cases on lines 4, 8, 12, 16 and 19. */
const TESTS = [
  'policy: policy.yaml',
  'now: 2026-11-27T12:00:00Z',
  'cases:',
  '  - name: balance with a misspelt scope claim is denied for the wrong reason',
  '    request: { method: GET, path: /balance }',
  '    token: { scopes: view:balance }',
  '    expect: { status: 403, error: insufficient_scope }',
  '  - name: balance with registered claims and an email',
  '    request: { method: GET, path: /balance }',
  '    token: { scope: view:balance, sub: alice, client_id: app, jti: x1, email: a@b.example }',
  '    expect: allow',
  `  - name: ${LONG_NAME}`,
  '    request: { method: POST, path: /transfer }',
  '    token: { scope: view:balance }',
  '    expect: allow',
  '  - name: "transfer <&> \\"quoted\\" \\u0001"',
  '    request: { method: POST, path: /transfer }',
  '    expect: { status: 401 }',
  '  - request: { method: GET, path: /balance }',
  '    expect: { status: 401 }',
  '',
].join('\n');

let temp: { dir: string; remove: () => Promise<void> };
let tests: string;

beforeAll(async () => {
  temp = await createTempDir('authz-ops-test-report-');
  await writeTextFile(temp.dir, 'policy.yaml', demoPolicyText(ROUTES));
  tests = await writeTextFile(temp.dir, 't.test.yaml', TESTS);
});

afterAll(async () => {
  await temp?.remove();
});

async function runTests(...args: string[]) {
  const capture = captureIo();
  const code = await testCommand(args, capture.io);
  return { code, stdout: capture.stdout(), stderr: capture.stderr() };
}

describe('authz test: claims that nothing reads', () => {
  it('warns per case with file:line and a "did you mean", without failing the run', async () => {
    const { code, stdout } = await runTests(tests);
    expect(stdout).toContain(
      `${tests}:4: warning: claim "scopes" is read by no issuer of the policy; did you mean "scope"? [claim_unread]\n`,
    );
    expect(stdout).toContain(
      `${tests}:8: warning: claim "email" is read by no issuer of the policy [claim_unread]\n`,
    );
    expect(stdout.match(/warning:/g)).toHaveLength(2);
    expect(stdout).toMatch(/\n4 passed, 1 failed, 2 warnings\n$/);
    expect(code).toBe(1); // the long-named case fails; warnings alone would not
  });

  it('--strict: warnings fail the run', async () => {
    const clean = await runTests('--run', 'registered', tests);
    expect(clean.code).toBe(0);
    const strict = await runTests('--strict', '--run', 'registered', tests);
    expect(strict.stdout).toMatch(/\n1 passed, 0 failed, 1 warning \(--strict: the run fails\)\n$/);
    expect(strict.code).toBe(1);
  });

  it("read claims are every issuer's scope, acr, amr and auth_time claims and the services' claim_headers", () => {
    const policy = compilePolicy(
      servicesPolicyText({
        realm: 'gateway',
        issuers: [{ issuer: DEMO_ISSUER, audiences: ['https://api'] }],
        services: [
          {
            name: 'api',
            hosts: ['api.example'],
            claimHeaders: { department: 'x-auth-department' },
            routes: ROUTES,
          },
        ],
      }),
      'policy.yaml',
    );
    expect([...claimsReadBy(policy)].sort()).toEqual([
      'acr',
      'amr',
      'auth_time',
      'department',
      'scope',
      'scp',
    ]);
    const plain = compileRoutes(...ROUTES);
    expect(
      unreadClaimWarnings({ permissions: ['a'], iss: DEMO_ISSUER, aud: 'x', azp: 'y' }, claimsReadBy(plain)),
    ).toEqual([
      {
        code: 'claim_unread',
        claim: 'permissions',
        message: 'claim "permissions" is read by no issuer of the policy',
      },
    ]);
    expect(unreadClaimWarnings({ departmnet: 'x', sbu: 'alice' }, claimsReadBy(policy))).toEqual([
      expect.objectContaining({ claim: 'departmnet', suggestion: 'department' }),
      expect.objectContaining({ claim: 'sbu', suggestion: 'sub' }),
    ]);
  });
});

describe('authz test: plain output', () => {
  it('keeps every line within 120 columns, cutting long names with …', async () => {
    const { stdout } = await runTests('--run', 'goes on', tests);
    const lines = stdout.split('\n');
    const row = lines.find((line) => line.startsWith('a case whose name'));
    expect(row).toMatch(
      /^a case whose name goes on and on .*… +allow +403 insufficient_scope scope="transfer:funds" +FAIL$/,
    );
    for (const line of lines.filter((l) => !l.startsWith(temp.dir)))
      expect(line.length).toBeLessThanOrEqual(120);
    // The failure line names the case cut to fit as well; --json has it in full.
    expect(lines).toContain('  expected allow');
  });
});

describe('authz test: a failure whose values differ only past the cut', () => {
  const SCOPES = 'transfer:funds view:balance view:statements account:read-write-a account:read-write';
  const expected = `403 insufficient_scope scope="${SCOPES}-c"`;
  const actual = `403 insufficient_scope scope="${SCOPES}-b"`;

  it('cuts the expected and actual cells around where they differ, and prints both in full below', async () => {
    await writeTextFile(
      temp.dir,
      'long-policy.yaml',
      demoPolicyText([`{ methods: [POST], path: /transfer, scopes: [${SCOPES.replaceAll(' ', ', ')}-b] }`]),
    );
    const file = await writeTextFile(
      temp.dir,
      'long.test.yaml',
      [
        'policy: long-policy.yaml',
        'now: 2026-11-27T12:00:00Z',
        'cases:',
        '  - name: transfer needs every scope',
        '    request: { method: POST, path: /transfer }',
        '    token: { scope: view:balance }',
        `    expect: { status: 403, error: insufficient_scope, scope: [${SCOPES.replaceAll(' ', ', ')}-c] }`,
        '',
      ].join('\n'),
    );
    const { code, stdout } = await runTests(file);
    expect(code).toBe(1);
    const lines = stdout.split('\n');
    expect(lines[2]).toBe(
      'transfer needs every scope  …count:read-write-a account:read-write-c"  …count:read-write-a account:read-write-b"  FAIL',
    );
    for (const line of lines.slice(1, 3)) expect(line.length).toBeLessThanOrEqual(120);
    expect(lines.slice(3, 6)).toEqual([
      `${file}:4: FAIL transfer needs every scope`,
      `  expected ${expected}`,
      `  got      ${actual}`,
    ]);
  });

  it.each([
    // [expected, actual, width, cut expected, cut actual]
    ['abcdefghijklmnopqrstuvwxyz-1', 'abcdefghijklmnopqrstuvwxyz-2', 10, '…tuvwxyz-1', '…tuvwxyz-2'],
    ['abcdefghijklmnopqrstuvwxyz', 'abcdefghijklmnXpqrstuvwxyz', 12, '…ijklmnopqr…', '…ijklmnXpqr…'],
    ['allow', '403 insufficient_scope scope="transfer:funds"', 12, 'allow', '403 insuffi…'],
    ['403 access_denied for ever', '403 access_denied for ever', 10, '403 acces…', '403 acces…'],
  ])('cutAtDifference(%j, %j, %i)', (a, b, width, cutA, cutB) => {
    const [x, y] = cutAtDifference(a, b, width, width);
    expect([x.length <= width, y.length <= width]).toEqual([true, true]);
    expect([x, y]).toEqual([cutA, cutB]);
  });
});

describe('authz test --json', () => {
  it('prints every selected case with its request, expectation, outcome and warnings; exit code as without it', async () => {
    const { code, stdout, stderr } = await runTests(
      '--json',
      tests,
      path.join(temp.dir, 'no-such.test.yaml'),
    );
    expect(stderr).toBe('');
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as TestRunReport;
    expect(report).toMatchObject({
      ok: false,
      strict: false,
      run: null,
      passed: 4,
      failed: 1,
      warnings: 2,
      selected: 5,
      cases: 5,
    });
    const [run, missing] = report.files;
    expect(missing).toEqual({
      file: path.join(temp.dir, 'no-such.test.yaml'),
      error: {
        what: 'test_file',
        code: 'ERR_POLICY_TEST_READ',
        problems: [expect.objectContaining({ message: 'the test file cannot be read (ENOENT)' })],
      },
    });
    if (run === undefined || !('results' in run)) throw new Error('the first file did not run');
    expect(run).toMatchObject({
      file: tests,
      policy: path.join(temp.dir, 'policy.yaml'),
      clock: '2026-11-27T12:00:00Z',
      cases: 5,
    });
    expect(run.results[0]).toEqual({
      file: tests,
      line: 4,
      name: 'balance with a misspelt scope claim is denied for the wrong reason',
      request: { method: 'GET', target: '/balance' },
      expected: '403 insufficient_scope',
      actual: '403 insufficient_scope scope="view:balance"',
      passed: true,
      warnings: [
        {
          code: 'claim_unread',
          claim: 'scopes',
          suggestion: 'scope',
          message: 'claim "scopes" is read by no issuer of the policy; did you mean "scope"?',
        },
      ],
    });
    expect(run.results[2]).toMatchObject({
      name: LONG_NAME,
      passed: false,
      actual: '403 insufficient_scope scope="transfer:funds"',
    });
    expect(run.results[3]?.name).toBe('transfer <&> "quoted" \u0001');
  });

  it('exits 0 with ok: true when every selected case passes', async () => {
    const { code, stdout } = await runTests('--json', '--run', 'registered', tests);
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, selected: 1, cases: 5, run: 'registered' });
    expect(code).toBe(0);
  });
});

describe('authz test --run', () => {
  it('selects the cases whose name contains PATTERN, and says how many', async () => {
    const { code, stdout } = await runTests('--run', 'balance', tests);
    expect(stdout).toContain(`${tests}: 3 of 5 cases (--run "balance") against`);
    expect(stdout).toMatch(/\n--run "balance": 3 of 5 cases selected\n3 passed, 0 failed, 2 warnings\n$/);
    expect(code).toBe(0);
  });

  it('takes /regex/ with flags as a regular expression', async () => {
    const { stdout } = await runTests('--run', '/^(TRANSFER|GET) /i', tests);
    expect(stdout).toMatch(/\n--run "\/\^\(TRANSFER\|GET\) \/i": 2 of 5 cases selected\n/);
    expect(stdout).toMatch(/^GET \/balance +401 +401 unauthorized +PASS$/m);
  });

  it('exits 1 with a message when no case is selected', async () => {
    const { code, stdout, stderr } = await runTests('--run', 'nothing like it', tests);
    expect(stderr).toBe('authz: --run "nothing like it" selected none of the 5 cases\n');
    expect(stdout).toMatch(/\n0 passed, 0 failed\n$/);
    expect(code).toBe(1);
    const json = await runTests('--json', '--run', 'nothing like it', tests);
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, selected: 0, cases: 5 });
    expect(json.code).toBe(1);
  });

  it('refuses an empty pattern and a regex that does not compile', async () => {
    await expect(runTests('--run', '', tests)).rejects.toThrow(UsageError);
    await expect(runTests('--run', '/(/', tests)).rejects.toThrow(
      /--run "\/\(\/": Invalid regular expression/,
    );
  });
});

describe('authz test --junit', () => {
  it('writes well-formed JUnit XML: a suite per file, a case per selected case, failures with a message', async () => {
    const report = path.join(temp.dir, 'junit.xml');
    const missing = path.join(temp.dir, 'missing.test.yaml');
    const { code } = await runTests('--junit', report, '--strict', tests, missing);
    expect(code).toBe(1);
    const root = parseXml(await readFile(report, 'utf8'));
    expect(root).toMatchObject({
      name: 'testsuites',
      attributes: { tests: '6', failures: '3', errors: '1' },
    });
    const [suite, broken] = root.children;
    expect(suite?.attributes).toMatchObject({ name: tests, tests: '5', failures: '3', errors: '0' });
    const cases = suite?.children ?? [];
    expect(cases.map((c) => [c.attributes['line'], c.children.map((child) => child.name)])).toEqual([
      ['4', ['failure', 'system-out']], // passed, but its warning fails the run under --strict
      ['8', ['failure', 'system-out']],
      ['12', ['failure']],
      ['16', []],
      ['19', []],
    ]);
    expect(cases[0]?.children[0]?.attributes).toEqual({ message: '1 warning (--strict)', type: 'warning' });
    expect(cases[2]?.attributes['name']).toBe(LONG_NAME);
    expect(cases[2]?.children[0]?.attributes).toEqual({
      message: 'expected allow, got 403 insufficient_scope scope="transfer:funds"',
      type: 'mismatch',
    });
    // Markup is escaped; a character XML cannot carry is shown as \u0001.
    expect(cases[3]?.attributes['name']).toBe('transfer <&> "quoted" \\u0001');
    expect(broken?.children[0]?.children[0]).toMatchObject({
      name: 'error',
      attributes: { type: 'ERR_POLICY_TEST_READ' },
      text: `${missing}: the test file cannot be read (ENOENT)`,
    });
    // Written through a temporary file that is renamed into place: none is left behind.
    expect((await readdir(temp.dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('exits 1 and says so when the report cannot be written; the run is reported all the same', async () => {
    const { code, stdout, stderr } = await runTests(
      '--junit',
      path.join(temp.dir, 'no-dir', 'j.xml'),
      '--run',
      'registered',
      tests,
    );
    expect(stdout).toMatch(/\n1 passed, 0 failed, 1 warning\n$/);
    expect(stderr).toBe(
      `authz: cannot write the JUnit report ${path.join(temp.dir, 'no-dir', 'j.xml')}: ENOENT\n`,
    );
    expect(code).toBe(1);
  });

  it('escapes for content and attributes', () => {
    expect(escapeXml('a<b>&"\'\t\n\r\u0000\uFFFF\uD800x😀', false)).toBe(
      'a&lt;b&gt;&amp;"\'\t\n&#xD;\\u0000\\uffff\\ud800x😀',
    );
    expect(escapeXml('"\t\n', true)).toBe('&quot;&#x9;&#xA;');
  });
});

/** An element of a parsed XML document: its attributes, child elements and text, references resolved. */
interface XmlElement {
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly children: XmlElement[];
  text: string;
}

/**
 * A strict reader of the XML subset the report uses (declaration, elements, attributes in double quotes,
 * text, the five predefined entities and character references), written without regular expressions.
 * Throws at the first thing that is not well-formed: a stray `<` or `&`, an unclosed or mismatched tag, a
 * duplicate attribute, a character XML 1.0 does not allow, or anything after the root element.
 */
function parseXml(source: string): XmlElement {
  let at = 0;
  const fail = (what: string): never => {
    throw new Error(`not well-formed XML at ${at}: ${what}`);
  };
  for (const ch of source) {
    const c = ch.codePointAt(0)!;
    const allowed =
      c === 0x9 ||
      c === 0xa ||
      c === 0xd ||
      (c >= 0x20 && c <= 0xd7ff) ||
      (c >= 0xe000 && c <= 0xfffd) ||
      c >= 0x10000;
    if (!allowed) fail(`character U+${c.toString(16)}`);
  }
  const isNameChar = (ch: string | undefined) =>
    ch !== undefined &&
    ((ch >= 'a' && ch <= 'z') ||
      (ch >= 'A' && ch <= 'Z') ||
      (ch >= '0' && ch <= '9') ||
      ch === '-' ||
      ch === '_' ||
      ch === ':' ||
      ch === '.');
  const skipSpace = () => {
    while (source[at] === ' ' || source[at] === '\n' || source[at] === '\t' || source[at] === '\r') at++;
  };
  const expectText = (text: string) => {
    if (!source.startsWith(text, at)) fail(`expected ${text}`);
    at += text.length;
  };
  const readName = () => {
    const start = at;
    while (isNameChar(source[at])) at++;
    if (at === start) fail('expected a name');
    return source.slice(start, at);
  };
  const readReference = () => {
    const end = source.indexOf(';', at);
    if (end < 0) fail('unterminated reference');
    const body = source.slice(at + 1, end);
    at = end + 1;
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (body in named) return named[body]!;
    if (body.startsWith('#x')) return String.fromCodePoint(Number.parseInt(body.slice(2), 16));
    if (body.startsWith('#')) return String.fromCodePoint(Number.parseInt(body.slice(1), 10));
    return fail(`unknown entity &${body};`);
  };
  const readElement = (): XmlElement => {
    expectText('<');
    const element: XmlElement = { name: readName(), attributes: {}, children: [], text: '' };
    for (;;) {
      skipSpace();
      if (source.startsWith('/>', at)) {
        at += 2;
        return element;
      }
      if (source[at] === '>') {
        at++;
        break;
      }
      const name = readName();
      if (name in element.attributes) fail(`duplicate attribute ${name}`);
      expectText('="');
      let value = '';
      while (source[at] !== '"') {
        if (at >= source.length || source[at] === '<') fail('bad attribute value');
        value += source[at] === '&' ? readReference() : source[at++];
      }
      at++;
      element.attributes[name] = value;
    }
    for (;;) {
      if (at >= source.length) fail(`unclosed <${element.name}>`);
      if (source.startsWith('</', at)) {
        at += 2;
        if (readName() !== element.name) fail(`mismatched </...> for <${element.name}>`);
        skipSpace();
        expectText('>');
        return element;
      }
      if (source[at] === '<') element.children.push(readElement());
      else if (source[at] === '&') element.text += readReference();
      else if (source[at] === '>' && source.startsWith(']]', at - 2)) fail(']]> in text');
      else element.text += source[at++];
    }
  };
  expectText('<?xml version="1.0" encoding="UTF-8"?>');
  skipSpace();
  const root = readElement();
  skipSpace();
  if (at !== source.length) fail('content after the root element');
  const trim = (element: XmlElement) => {
    if (element.children.length > 0 && element.text.trim() === '') element.text = '';
    element.children.forEach(trim);
  };
  trim(root);
  return root;
}
