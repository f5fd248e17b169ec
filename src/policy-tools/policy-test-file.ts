import { dirname, isAbsolute, join } from 'node:path';
import type { AuthScheme } from '../authz/credentials.js';
import { normalisedRequestHost } from '../authz/request-host.js';
import { parseDurationSeconds } from '../policy/duration.js';
import { PolicyError, type PolicyProblem } from '../policy/policy-error.js';
import { parseInstant } from './instant.js';
import { displayYamlPath, YamlLocations, type YamlPath } from '../policy/yaml-locations.js';

/** What a case expects: allowed, or denied (or, under report-only, allowed with this denial logged). */
export type Expectation =
  | { readonly kind: 'allow' }
  | {
      readonly kind: 'deny';
      readonly status: number;
      readonly error?: string;
      /** Scope tokens the challenge must name, in any order. */
      readonly scope?: readonly string[];
      /** ACR values the challenge must name, in any order. */
      readonly acrValues?: readonly string[];
      readonly maxAge?: number;
      /** true: a report-only route lets the request through and logs this denial. */
      readonly wouldDeny: boolean;
      /** The scheme of the challenge carrying the error (else the first), `Bearer` or `DPoP`. */
      readonly scheme?: AuthScheme;
    };

/** The token of a case: none, or claims (with `auth_time_ago` still to be turned into `auth_time`). */
export type CaseToken =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'claims';
      readonly claims: Readonly<Record<string, unknown>>;
      readonly authTimeAgoSeconds?: number;
    };

/** One test case. */
export interface PolicyTestCase {
  readonly name: string;
  /** 1-based line of the case in the test file. */
  readonly line: number;
  readonly request: {
    readonly method: string;
    readonly target: string;
    /** The case's `host`: the request's Host, which picks the service of a policy with `services`. */
    readonly host?: string;
    /** The case's `service`: the name Envoy sends in ext_authz `context_extensions`. */
    readonly serviceName?: string;
    /** `request.scheme`: the scheme the token is presented with (default `Bearer`). */
    readonly scheme?: AuthScheme;
    /** `request.dpop_proof`: the request carries a valid DPoP proof from the token's key. */
    readonly dpopProof?: boolean;
    /** `request.client_certificate`: the connection presents the token's client certificate. */
    readonly clientCertificate?: boolean;
  };
  readonly token: CaseToken;
  readonly expect: Expectation;
}

/** A parsed, valid policy test file. */
export interface PolicyTestFile {
  readonly file: string;
  /** The policy under test: the file's `policy`, joined to the test file's folder. */
  readonly policyFile: string;
  /** The fixed clock, in milliseconds since the epoch; undefined: the real clock. */
  readonly nowMs: number | undefined;
  readonly cases: readonly PolicyTestCase[];
}

const FILE_KEYS = ['policy', 'now', 'cases'];
const CASE_KEYS = ['name', 'host', 'service', 'request', 'token', 'expect'];
const REQUEST_KEYS = ['method', 'path', 'scheme', 'dpop_proof', 'client_certificate'];
const EXPECT_KEYS = ['status', 'error', 'scope', 'acr_values', 'max_age', 'would_deny', 'scheme'];
// RFC 9110 section 5.6.2 token: what an HTTP method may be.
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
const MAX_CASES = 10_000;

/**
 * Parses and validates a policy test file (format: docs/policy-tests.md). Pure: the policy is named,
 * not read.
 *
 * @param file the file name, for messages and to resolve the policy path.
 * @throws PolicyError (`ERR_POLICY_TEST_SYNTAX`, `ERR_POLICY_TEST_INVALID`) with every problem found, each located.
 */
export function parsePolicyTestFile(text: string, file: string): PolicyTestFile {
  const locations = new YamlLocations(text);
  const { document } = locations;
  if (document.errors.length > 0) {
    throw new PolicyError(
      'ERR_POLICY_TEST_SYNTAX',
      document.errors.map((error) => ({
        file,
        ...locations.positionOfOffset(error.pos[0]),
        path: '',
        message: `YAML syntax: ${error.message.split('\n')[0] ?? error.message}`,
      })),
    );
  }
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new PolicyError('ERR_POLICY_TEST_SYNTAX', [
      { file, line: 0, column: 0, path: '', message: `YAML: ${(error as Error).message.split('\n')[0]}` },
    ]);
  }

  const problems: PolicyProblem[] = [];
  const report = (path: YamlPath, message: string) => {
    problems.push({ file, ...locations.positionOf(path), path: displayYamlPath(path), message });
  };
  const result = readTestFile(data, file, report, (path) => locations.positionOf(path).line);
  if (problems.length > 0 || result === undefined) {
    const byPlace = (a: PolicyProblem, b: PolicyProblem) => a.line - b.line || a.column - b.column;
    throw new PolicyError('ERR_POLICY_TEST_INVALID', problems.sort(byPlace));
  }
  return result;
}

type Report = (path: YamlPath, message: string) => void;

function readTestFile(
  data: unknown,
  file: string,
  report: Report,
  lineOf: (path: YamlPath) => number,
): PolicyTestFile | undefined {
  if (!isMapping(data)) {
    report([], 'a policy test file is a mapping with "policy", "cases" and optionally "now"');
    return undefined;
  }
  unknownKeys(data, FILE_KEYS, [], report);

  const policy = data['policy'];
  if (policy === undefined)
    report([], 'missing required key "policy" (the policy file, relative to this file)');
  else if (typeof policy !== 'string' || policy === '')
    report(['policy'], 'must be the policy file, relative to this file');

  let nowMs: number | undefined;
  const now = data['now'];
  if (now !== undefined) {
    nowMs = typeof now === 'string' ? parseInstant(now) : undefined;
    if (nowMs === undefined)
      report(['now'], 'must be a date-time with a time zone, e.g. 2026-11-27T12:00:00Z');
  }

  const cases: PolicyTestCase[] = [];
  const list = data['cases'];
  if (list === undefined) report([], 'missing required key "cases" (a list of test cases)');
  else if (!Array.isArray(list) || list.length === 0)
    report(['cases'], 'must be a non-empty list of test cases');
  else if (list.length > MAX_CASES) report(['cases'], `has more than ${MAX_CASES} cases`);
  else
    list.forEach((entry, i) => {
      const parsed = readCase(entry, ['cases', i], report);
      if (parsed !== undefined) cases.push({ ...parsed, line: lineOf(['cases', i]) });
    });

  if (typeof policy !== 'string' || policy === '') return undefined;
  // Joined rather than resolved: messages then name the policy as the person would (policy.yaml).
  return { file, policyFile: isAbsolute(policy) ? policy : join(dirname(file), policy), nowMs, cases };
}

function readCase(entry: unknown, at: YamlPath, report: Report): Omit<PolicyTestCase, 'line'> | undefined {
  if (!isMapping(entry)) {
    report(
      at,
      'a case is a mapping with "request", "expect", and optionally "name", "host", "service" and "token"',
    );
    return undefined;
  }
  unknownKeys(entry, CASE_KEYS, at, report);
  let ok = true;
  const fail = (path: YamlPath, message: string) => {
    report(path, message);
    ok = false;
  };

  const request = entry['request'];
  let method = '';
  let target = '';
  let scheme: AuthScheme | undefined;
  let dpopProof: boolean | undefined;
  let clientCertificate: boolean | undefined;
  if (!isMapping(request)) {
    fail(request === undefined ? at : [...at, 'request'], 'needs "request: { method: GET, path: /balance }"');
  } else {
    unknownKeys(request, REQUEST_KEYS, [...at, 'request'], report);
    if (typeof request['method'] !== 'string' || !METHOD.test(request['method']))
      fail([...at, 'request', 'method'], 'must be an HTTP method, e.g. GET');
    else method = request['method'];
    if (typeof request['path'] !== 'string' || request['path'] === '')
      fail([...at, 'request', 'path'], 'must be the request path (a query string may follow)');
    else target = request['path'];
    if (request['scheme'] !== undefined) {
      scheme = authScheme(request['scheme']);
      if (scheme === undefined) fail([...at, 'request', 'scheme'], 'must be Bearer or DPoP');
    }
    for (const [key, set] of [
      ['dpop_proof', (value: boolean) => (dpopProof = value)],
      ['client_certificate', (value: boolean) => (clientCertificate = value)],
    ] as const) {
      const value = request[key];
      if (value === undefined) continue;
      if (typeof value === 'boolean') set(value);
      else fail([...at, 'request', key], 'must be true or false');
    }
  }

  const name = entry['name'];
  if (name !== undefined && (typeof name !== 'string' || name.trim() === ''))
    fail([...at, 'name'], 'must be a non-empty string');

  // Validated as the server reads them: a host must be one it could match (a port and a trailing dot are
  // allowed and ignored); any service name can be sent, known or not (service_unknown is testable).
  const host = entry['host'];
  if (host !== undefined && (typeof host !== 'string' || normalisedRequestHost(host) === undefined))
    fail([...at, 'host'], 'must be a host name, e.g. bank.example (a port may follow)');
  const service = entry['service'];
  if (service !== undefined && (typeof service !== 'string' || service === ''))
    fail([...at, 'service'], 'must be the service name Envoy sends (ext_authz context_extensions)');

  const token = readToken(entry['token'], [...at, 'token'], fail);
  // What the request carries besides its token says nothing without one: refused, not ignored.
  if (token?.kind === 'none' && isMapping(request)) {
    for (const key of ['scheme', 'dpop_proof', 'client_certificate']) {
      if (request[key] !== undefined)
        fail([...at, 'request', key], `needs a token: ${key} is about how the token is presented`);
    }
  }
  const expect = readExpect(entry['expect'], at, fail);
  if (!ok || token === undefined || expect === undefined) return undefined;
  const on = [
    ...(typeof host === 'string' ? [`host ${host}`] : []),
    ...(typeof service === 'string' ? [`service ${service}`] : []),
  ];
  return {
    name: typeof name === 'string' ? name : [`${method} ${target}`, ...on].join(' '),
    request: {
      method,
      target,
      ...(typeof host === 'string' ? { host } : {}),
      ...(typeof service === 'string' ? { serviceName: service } : {}),
      ...(scheme === undefined ? {} : { scheme }),
      ...(dpopProof === true ? { dpopProof } : {}),
      ...(clientCertificate === true ? { clientCertificate } : {}),
    },
    token,
    expect,
  };
}

function readToken(value: unknown, at: YamlPath, fail: Report): CaseToken | undefined {
  if (value === undefined || value === 'none') return { kind: 'none' };
  if (!isMapping(value)) {
    fail(at, 'must be "none" or the token\'s claims, e.g. { scope: view:balance }');
    return undefined;
  }
  const { auth_time_ago: ago, ...claims } = value;
  if (ago === undefined) return { kind: 'claims', claims };
  const seconds = parseDurationSeconds(ago);
  if (seconds === undefined) {
    fail([...at, 'auth_time_ago'], 'must be a duration (whole seconds, or 30s / 10m / 1h)');
    return undefined;
  }
  if (Object.hasOwn(claims, 'auth_time')) {
    fail([...at, 'auth_time_ago'], 'give auth_time or auth_time_ago, not both');
    return undefined;
  }
  return { kind: 'claims', claims, authTimeAgoSeconds: seconds };
}

function readExpect(value: unknown, caseAt: YamlPath, fail: Report): Expectation | undefined {
  const at = [...caseAt, 'expect'];
  if (value === undefined) {
    fail(caseAt, 'missing required key "expect" (allow, or { status: 403, error: insufficient_scope })');
    return undefined;
  }
  if (value === 'allow') return { kind: 'allow' };
  if (!isMapping(value)) {
    fail(at, 'must be allow, or a mapping such as { status: 403, error: insufficient_scope }');
    return undefined;
  }
  let ok = true;
  const bad = (key: string, message: string) => {
    fail([...at, key], message);
    ok = false;
  };
  unknownKeys(value, EXPECT_KEYS, at, (path, message) => {
    fail(path, message);
    ok = false;
  });
  const {
    status,
    error,
    scope,
    acr_values: acrValues,
    max_age: maxAge,
    would_deny: wouldDeny,
    scheme,
  } = value;
  if (status === undefined) {
    fail(at, 'missing required key "status" (the HTTP status of the denial)');
    ok = false;
  } else if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) {
    bad('status', 'must be an HTTP status code, e.g. 403');
  }
  if (error !== undefined && (typeof error !== 'string' || error === ''))
    bad('error', 'must be the error code, e.g. insufficient_scope');
  const scopes = spaceList(scope);
  if (scope !== undefined && scopes === undefined) bad('scope', 'must be scopes: "a b" or [a, b]');
  const acr = spaceList(acrValues);
  if (acrValues !== undefined && acr === undefined) bad('acr_values', 'must be values: "a b" or [a, b]');
  const maxAgeSeconds = maxAge === undefined ? undefined : parseDurationSeconds(maxAge);
  if (maxAge !== undefined && maxAgeSeconds === undefined)
    bad('max_age', 'must be seconds (600) or a duration (10m)');
  if (wouldDeny !== undefined && typeof wouldDeny !== 'boolean') bad('would_deny', 'must be true or false');
  const challengeScheme = scheme === undefined ? undefined : authScheme(scheme);
  if (scheme !== undefined && challengeScheme === undefined) bad('scheme', 'must be Bearer or DPoP');
  if (!ok) return undefined;
  return {
    kind: 'deny',
    status: status as number,
    ...(error === undefined ? {} : { error: error as string }),
    ...(scopes === undefined ? {} : { scope: scopes }),
    ...(acr === undefined ? {} : { acrValues: acr }),
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
    wouldDeny: wouldDeny === true,
    ...(challengeScheme === undefined ? {} : { scheme: challengeScheme }),
  };
}

/** `Bearer` or `DPoP`, in any case (auth schemes are case-insensitive: RFC 9110 section 11.1). */
function authScheme(value: unknown): AuthScheme | undefined {
  if (typeof value !== 'string') return undefined;
  const lower = value.toLowerCase();
  return lower === 'bearer' ? 'Bearer' : lower === 'dpop' ? 'DPoP' : undefined;
}

/** `"a b"` or `[a, b]` as a list of non-empty strings; undefined when absent or of another shape. */
function spaceList(value: unknown): string[] | undefined {
  if (typeof value === 'string') {
    const items = value.split(' ').filter((item) => item !== '');
    return items.length === 0 ? undefined : items;
  }
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v !== ''))
    return value as string[];
  return undefined;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Map);
}

function unknownKeys(
  value: Record<string, unknown>,
  allowed: readonly string[],
  at: YamlPath,
  report: Report,
) {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) report([...at, key], `unknown key "${key}" (allowed: ${allowed.join(', ')})`);
  }
}
