import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DpopNonces } from '../../src/authn/dpop-nonces.js';
import { IDENTITY_HEADERS } from '../../src/contract/identity-headers.js';
import {
  accessTokenHash,
  dpopProof,
  generateDpopKey,
  unsecuredProof,
  type DpopKey,
  type ProofInit,
} from '../kit/dpop-proofs.js';
import { startJwksServer, type JwksServer } from '../kit/test-issuer.js';
import { generateTestKey, signTestToken, type TestKey } from '../kit/tokens.js';
import { waitUntil } from '../kit/wait-until.js';
import { startCli, type RunningCli } from '../kit/cli-process.js';
import { freePorts, startEnvoy, type RunningEnvoy } from '../kit/envoy-process.js';

// DPoP (RFC 9449) through the real Envoy (envoy/envoy.yaml, ports changed only) and `authz serve` with a
// policy written here: every refusal of docs/sender-constraints.md a DPoP request can trigger, each with its
// status, the error under the right scheme in its own WWW-Authenticate line, the JSON body's error and the
// decision log's code, and never a request at the upstream; then what must pass (htu normalisation, the
// nonce round trip, a fresh proof after a replay, step-up combined with DPoP).
//
// Three services, chosen by Host (docs/policy.md, "Services"):
// - bank (127.0.0.1, localhost, bank.test): DPoP allowed; /transfer requires it (and MFA), /plain turns it
//   off. Public origins: this Envoy's http://127.0.0.1:PORT and https://bank.test. `localhost` reaches the
//   service but is no public origin, so a proof whose htu follows the Host header is refused.
// - nonce (nonce.test): DPoP allowed, server nonces required, with the shortest nonce_lifetime; authz is
//   given the nonce key (--dpop-nonce-key), so that a test makes nonces of a chosen age instead of waiting.
// - strict (strict.test): no sender_constraint of its own, so the issuers' apply: the strict issuer requires
//   DPoP-bound tokens, the main issuer sets nothing (off). A short max_age for the replay-after-the-window case.
// The top-level dpop.replay_cache_per_key is small, so that one test can spend a key's share.

const MAIN_ISSUER = 'https://issuer.dpop-e2e.test/';
const STRICT_ISSUER = 'https://strict-issuer.dpop-e2e.test/';
const AUDIENCE = 'https://my-banking-api';
const REALM = 'bank-api';
/** The top-level dpop.algorithms, as the DPoP challenge's algs names them. */
const ALGS = 'ES256 EdDSA';
/**
 * The strict service's dpop.max_age, in seconds: short, for the replay-after-the-window case, yet long
 * enough for a proof's first use through Envoy on a loaded machine (its iat is in whole seconds).
 */
const STRICT_MAX_AGE = 5;
/** The nonce service's dpop.nonce_lifetime, in seconds: the least allowed. */
const NONCE_LIFETIME = 10;
/** The key of DPoP server nonces (`--dpop-nonce-key`), so that a test can make a nonce of a given age. */
const NONCE_KEY = randomBytes(32);
/**
 * The top-level dpop.replay_cache_per_key: what one key may hold of the replay store. Above what the holder's
 * key uses within one proof window across this file (some 150 proofs), small enough for one test to spend.
 */
const REPLAY_SHARE_PER_KEY = 300;
/** Ties a request to what the upstream received for it. */
const REQUEST_ID = 'x-e2e-request';

type Scheme = 'Bearer' | 'DPoP';
type Lines = Array<[string, string]>;

/** One request as the recording upstream received it. */
interface Received {
  readonly method: string;
  readonly url: string;
  readonly lines: ReadonlyArray<readonly [string, string]>;
}

/** What came back for one request through Envoy. */
interface Sent {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Each `WWW-Authenticate` line on its own (Node's `headers` joins them with commas). */
  readonly challenges: readonly string[];
  readonly body: string;
  readonly upstream: Received | undefined;
  /** The decision line authz logged for it. */
  readonly decision: Record<string, unknown> | undefined;
}

let dir: string;
let envoy: RunningEnvoy;
let authz: RunningCli;
let upstream: Server;
let jwks: JwksServer;
let issuerKey: TestKey;
/** http://127.0.0.1:PORT: where the test reaches Envoy, the bank service's first public origin. */
let origin: string;
/** The client's DPoP key (ES256), and three others. */
let holder: DpopKey;
let thief: DpopKey;
let edHolder: DpopKey;
let rsaHolder: DpopKey;
const received = new Map<string, Received>();
let requestCount = 0;
let decisionsSeen = 0;
/** authz's /metrics. */
let metricsUrl: string;

/** How many proof `jti` values authz holds now (authz_dpop_replay_cache_entries). */
async function replayEntries(): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  return Number(/^authz_dpop_replay_cache_entries (\d+)$/m.exec(text)?.[1] ?? NaN);
}

/** A token of `issuer` (default the main one) for alice with `claims` over the defaults. */
function token(claims: Record<string, unknown>, issuer = MAIN_ISSUER): Promise<string> {
  return signTestToken(issuerKey, { issuer, audience: AUDIENCE }, { claims });
}

/** A view:balance token bound to `key` (cnf.jkt, RFC 9449 section 6.1). */
function boundToken(key: DpopKey = holder, claims: Record<string, unknown> = {}, issuer?: string) {
  return token({ scope: 'view:balance', cnf: { jkt: key.jkt }, ...claims }, issuer);
}

/** Login claims of a recent multi-factor login, as /transfer requires (RFC 9470). */
function mfaLogin(): Record<string, unknown> {
  return { acr: 'urn:bank:mfa', amr: ['pwd', 'mfa'], auth_time: Math.floor(Date.now() / 1000) - 30 };
}

/** A proof from `key` (default: the holder's) for GET /balance on this Envoy's origin, with overrides. */
function proof(accessToken: string, init: Partial<ProofInit> = {}, key: DpopKey = holder): Promise<string> {
  return dpopProof(key, { method: 'GET', url: `${origin}/balance`, accessToken, ...init });
}

/** `Authorization: DPoP <token>` and a `DPoP` header line per proof. */
function dpop(accessToken: string, ...proofs: string[]): Lines {
  return [['Authorization', `DPoP ${accessToken}`], ...proofs.map((p): [string, string] => ['DPoP', p])];
}

/** The decision lines authz has logged so far. */
function decisions(): Record<string, unknown>[] {
  return authz.logLines().filter((line) => line['event'] === 'decision');
}

/**
 * Sends one HTTP/1.1 request through Envoy with the header lines exactly as given (repeats kept), on a
 * fresh connection; returns the answer and what the upstream got.
 */
async function exchange(
  method: string,
  target: string,
  headers: Lines,
  options: { host?: string; body?: string } = {},
): Promise<Omit<Sent, 'decision'>> {
  const id = String(++requestCount);
  const { host, hostname, port } = new URL(envoy.baseUrl);
  const lines: Lines = [['Host', options.host ?? host], ...headers, [REQUEST_ID, id]];
  const { body } = options;
  if (body !== undefined) {
    lines.push(['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))]);
  }
  const answer = await new Promise<Omit<Sent, 'upstream' | 'decision'>>((resolve, reject) => {
    const req = request(
      { host: hostname, port, method, path: target, headers: lines.flat(), agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        const challenges = res.rawHeaders.filter(
          (_value, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'www-authenticate',
        );
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, challenges, body: text }),
        );
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${target} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
  return { ...answer, upstream: received.get(id) };
}

/**
 * Waits until authz has logged at least `count` decision lines, and returns them all. They are written
 * within 100 ms; the 10 s bound is a guard for a loaded machine, and missing it fails: the tests tell a
 * request's line by counting, so a count short of what was sent must never be taken for the lines.
 */
async function decisionsUntil(count: number): Promise<Record<string, unknown>[]> {
  return waitUntil(decisions, (logged) => logged.length >= count, {
    timeoutMs: 10_000,
    intervalMs: 20,
    what: `decision line ${count}`,
  });
}

/** {@link exchange}, and the decision authz logged for the request. */
async function send(
  method: string,
  target: string,
  headers: Lines,
  options: { host?: string; body?: string } = {},
): Promise<Sent> {
  const answer = await exchange(method, target, headers, options);
  // Every request here goes to authz (no /healthz): its decision line is the next one logged.
  const logged = await decisionsUntil(decisionsSeen + 1);
  const decision = logged[decisionsSeen];
  decisionsSeen = Math.max(decisionsSeen, logged.length);
  return { ...answer, decision };
}

/** A bare challenge (RFC 6750 section 3, RFC 9449 section 7.1: a DPoP challenge names `algs`). */
function bare(scheme: Scheme): string {
  return scheme === 'DPoP' ? `DPoP realm="${REALM}", algs="${ALGS}"` : `Bearer realm="${REALM}"`;
}

/**
 * The challenges a refusal must carry: `error` (with an error_description and any `extra` parameters, in
 * the order of auth-challenge.ts) under `scheme`, and a bare challenge for every other scheme in `accepted`,
 * each on its own line.
 */
function expectChallenges(
  sent: Sent,
  accepted: readonly Scheme[],
  scheme: Scheme | undefined,
  error?: string,
  extra: Record<string, string> = {},
): void {
  const byScheme = new Map<string, string[]>();
  for (const line of sent.challenges) {
    const name = line.split(' ', 1)[0]!;
    byScheme.set(name, [...(byScheme.get(name) ?? []), line]);
  }
  expect([...byScheme.keys()].sort(), sent.challenges.join(' | ')).toEqual([...accepted].sort());
  for (const name of accepted) {
    const lines = byScheme.get(name) ?? [];
    expect(lines, `${name} challenges`).toHaveLength(1);
    if (name !== scheme) {
      expect(lines[0]).toBe(bare(name));
      continue;
    }
    const params = Object.entries(extra)
      .map(([key, value]) => `, ${key}="${escapeRegExp(value)}"`)
      .join('');
    const algs = name === 'DPoP' ? `, algs="${ALGS}"` : '';
    expect(lines[0]).toMatch(
      new RegExp(
        `^${name} realm="${REALM}", error="${error}"(, error_description="[^"]+")?${params}${algs}$`,
      ),
    );
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The JSON body's `error`. */
function bodyError(sent: Pick<Sent, 'headers' | 'body'>): unknown {
  expect(sent.headers['content-type']).toBe('application/json');
  return (JSON.parse(sent.body) as Record<string, unknown>)['error'];
}

/** A refusal: status, challenges, body, decision code, and nothing at the upstream. */
function expectRefused(
  sent: Sent,
  expected: {
    status: number;
    code: string;
    accepted: readonly Scheme[];
    /** The scheme the error is under; none for bare challenges only. */
    scheme?: Scheme;
    error: string;
    extra?: Record<string, string>;
  },
): void {
  expect(
    { status: sent.status, code: sent.decision?.['reason'] },
    `${sent.body}\n${sent.challenges.join('\n')}`,
  ).toEqual({
    status: expected.status,
    code: expected.code,
  });
  expect(sent.decision).toMatchObject({ decision: 'deny', status: expected.status });
  expectChallenges(sent, expected.accepted, expected.scheme, expected.error, expected.extra);
  expect(bodyError(sent)).toBe(expected.error);
  expect(sent.upstream, 'the upstream received the request').toBeUndefined();
}

/** An allowed request: 200, the identity headers at the upstream, and no Authorization or DPoP header there. */
function expectAllowed(sent: Sent, scopes = 'view:balance'): void {
  expect(
    { status: sent.status, code: sent.decision?.['reason'] },
    `${sent.body}\n${sent.challenges.join('\n')}`,
  ).toEqual({
    status: 200,
    code: 'allowed',
  });
  expect(sent.upstream, 'the upstream received the request').toBeDefined();
  const lines = sent.upstream!.lines.map(([name, value]) => [name.toLowerCase(), value] as const);
  expect(lines.filter(([name]) => name === 'authorization')).toEqual([]);
  // The proof is for the sidecar: envoy.yaml removes it with the token.
  expect(lines.filter(([name]) => name === 'dpop')).toEqual([]);
  expect(lines.filter(([name]) => name === IDENTITY_HEADERS.subject)).toEqual([
    [IDENTITY_HEADERS.subject, 'alice'],
  ]);
  expect(lines.filter(([name]) => name === IDENTITY_HEADERS.scopes)).toEqual([
    [IDENTITY_HEADERS.scopes, scopes],
  ]);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'authz-dpop-e2e-'));
  issuerKey = await generateTestKey('dpop-e2e-key');
  jwks = await startJwksServer([issuerKey.publicJwk]);
  [holder, thief, edHolder, rsaHolder] = await Promise.all([
    generateDpopKey('ES256'),
    generateDpopKey('ES256'),
    generateDpopKey('EdDSA'),
    generateDpopKey('PS256'),
  ]);

  const [listen, admin, authzPort, upstreamPort, metricsPort] = (await freePorts(5)) as [
    number,
    number,
    number,
    number,
    number,
  ];
  origin = `http://127.0.0.1:${listen}`;
  const issuer = (iss: string) => ({
    issuer: iss,
    audiences: [AUDIENCE],
    jwks_uri: jwks.url,
    algorithms: ['RS256'],
    require_typ: 'at+jwt',
  });
  const balance = { methods: ['GET'], path: '/balance', scopes: ['view:balance'] };
  const policy = {
    version: 1,
    realm: REALM,
    dpop: { algorithms: ['ES256', 'EdDSA'], replay_cache_per_key: REPLAY_SHARE_PER_KEY },
    issuers: [issuer(MAIN_ISSUER), { ...issuer(STRICT_ISSUER), sender_constraint: { dpop: 'required' } }],
    services: [
      {
        name: 'bank',
        hosts: ['127.0.0.1', 'localhost', 'bank.test'],
        public_origin: [origin, 'https://bank.test'],
        issuers: [{ issuer: MAIN_ISSUER }],
        sender_constraint: { dpop: 'allowed' },
        routes: [
          balance,
          {
            methods: ['POST'],
            path: '/transfer',
            scopes: ['transfer:funds'],
            authentication: { acr_values: ['urn:bank:mfa'], amr: ['mfa'], max_age: '10m' },
            sender_constraint: { dpop: 'required' },
          },
          { methods: ['GET'], path: '/plain', scopes: ['view:balance'], sender_constraint: { dpop: 'off' } },
        ],
      },
      {
        name: 'nonce',
        hosts: ['nonce.test'],
        public_origin: 'https://nonce.test',
        issuers: [{ issuer: MAIN_ISSUER }],
        sender_constraint: { dpop: 'allowed' },
        dpop: { nonce: 'required', nonce_lifetime: `${NONCE_LIFETIME}s` },
        routes: [balance],
      },
      {
        name: 'strict',
        hosts: ['strict.test'],
        public_origin: 'https://strict.test',
        dpop: { max_age: `${STRICT_MAX_AGE}s` },
        routes: [balance],
      },
    ],
  };
  const policyFile = path.join(dir, 'policy.yaml');
  const nonceKeyFile = path.join(dir, 'dpop-nonce.key');
  await writeFile(nonceKeyFile, NONCE_KEY, { mode: 0o600 });
  await writeFile(policyFile, stringify(policy));

  upstream = createServer((req, res) => {
    const lines: Array<[string, string]> = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
      lines.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const id = req.headers[REQUEST_ID];
    if (typeof id === 'string') received.set(id, { method: req.method ?? '', url: req.url ?? '', lines });
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve));
  authz = await startCli([
    'serve',
    '--policy',
    policyFile,
    '--listen',
    `127.0.0.1:${authzPort}`,
    '--metrics-listen',
    `127.0.0.1:${metricsPort}`,
    '--dpop-nonce-key',
    nonceKeyFile,
  ]);
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
  decisionsSeen = decisions().length;
  envoy = await startEnvoy({ listen, admin, authz: authzPort, bank: upstreamPort });
});

afterAll(async () => {
  await envoy?.stop();
  await authz?.stop();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await jwks?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** GET /balance on the bank service: DPoP allowed, so both schemes are offered. */
const BOTH: readonly Scheme[] = ['Bearer', 'DPoP'];

interface RefusalCase {
  readonly name: string;
  /** The header lines to send (with `Host` the bank's unless `host` says otherwise). */
  readonly lines: () => Promise<Lines>;
  readonly method?: string;
  readonly target?: string;
  readonly host?: () => string;
  readonly code: string;
  readonly scheme?: Scheme;
  readonly error: string;
  readonly accepted?: readonly Scheme[];
}

/** A refusal of a proof on GET /balance: 401 invalid_dpop_proof under DPoP, a bare Bearer challenge. */
function proofCase(name: string, code: string, lines: () => Promise<Lines>): RefusalCase {
  return { name, lines, code, scheme: 'DPoP', error: 'invalid_dpop_proof' };
}

/** A DPoP request with the bound token and the holder's proof made with `init` (a function: read when sent). */
function withProof(init: Partial<ProofInit> | (() => Partial<ProofInit>)): () => Promise<Lines> {
  return async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, typeof init === 'function' ? init() : init));
  };
}

const now = () => Math.floor(Date.now() / 1000);

const REFUSALS: readonly RefusalCase[] = [
  {
    name: 'a DPoP-bound token sent as Bearer',
    lines: async () => [['Authorization', `Bearer ${await boundToken()}`]],
    code: 'binding_dpop_scheme_required',
    scheme: 'Bearer',
    error: 'invalid_token',
  },
  {
    name: 'a DPoP-bound token sent as Bearer, with a valid proof beside it',
    lines: async () => {
      const at = await boundToken();
      return [
        ['Authorization', `Bearer ${at}`],
        ['DPoP', await proof(at)],
      ];
    },
    code: 'binding_dpop_scheme_required',
    scheme: 'Bearer',
    error: 'invalid_token',
  },
  proofCase('the DPoP scheme without a DPoP header', 'dpop_proof_missing', async () =>
    dpop(await boundToken()),
  ),
  proofCase('two DPoP header lines, each a valid proof', 'dpop_proof_multiple', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at), await proof(at));
  }),
  proofCase('two proofs joined with a comma in one DPoP header', 'dpop_proof_multiple', async () => {
    const at = await boundToken();
    return dpop(at, `${await proof(at)}, ${await proof(at)}`);
  }),
  proofCase('a proof that is not a JWS', 'dpop_proof_malformed', async () =>
    dpop(await boundToken(), 'not-a-jws'),
  ),
  proofCase('a proof of three parts that are not base64url JSON', 'dpop_proof_malformed', async () =>
    dpop(await boundToken(), '!!!.e30.abc'),
  ),
  proofCase('a proof larger than 8 KiB', 'dpop_proof_malformed', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, { claims: { pad: 'x'.repeat(9_000) } }));
  }),
  proofCase('typ: JWT', 'dpop_proof_type_invalid', withProof({ header: { typ: 'JWT' } })),
  proofCase('no typ', 'dpop_proof_type_invalid', withProof({ header: { typ: undefined } })),
  proofCase('alg: none (unsigned)', 'dpop_proof_algorithm_not_allowed', async () => {
    const at = await boundToken();
    return dpop(at, unsecuredProof(holder, { method: 'GET', url: `${origin}/balance`, accessToken: at }));
  }),
  proofCase(
    'HS256 (a MAC)',
    'dpop_proof_algorithm_not_allowed',
    withProof({ header: { alg: 'HS256' }, signWith: randomBytes(32) }),
  ),
  proofCase(
    'PS256, a real asymmetric algorithm the policy does not list',
    'dpop_proof_algorithm_not_allowed',
    async () => {
      const at = await boundToken(rsaHolder);
      return dpop(at, await proof(at, {}, rsaHolder));
    },
  ),
  proofCase('no jwk header', 'dpop_proof_key_invalid', withProof({ header: { jwk: undefined } })),
  proofCase('a private jwk (with d)', 'dpop_proof_key_invalid', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, { header: { jwk: holder.privateJwk } }));
  }),
  proofCase('a symmetric jwk (kty oct)', 'dpop_proof_key_invalid', async () => {
    const at = await boundToken();
    const k = randomBytes(32).toString('base64url');
    return dpop(at, await proof(at, { header: { jwk: { kty: 'oct', k } } }));
  }),
  proofCase('a jwk whose EC point is not on its curve', 'dpop_proof_key_invalid', async () => {
    const at = await boundToken();
    const x = Buffer.from(holder.publicJwk.x!, 'base64url');
    x[x.length - 1]! ^= 1;
    const jwk = { ...holder.publicJwk, x: x.toString('base64url') };
    return dpop(at, await proof(at, { header: { jwk } }));
  }),
  proofCase('signed by another key than its jwk', 'dpop_proof_signature_invalid', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, { signWith: thief.privateKey }));
  }),
  ...(['jti', 'htm', 'htu', 'iat', 'ath'] as const).map((claim) =>
    proofCase(
      `no ${claim} claim`,
      'dpop_proof_claims_invalid',
      withProof({ claims: { [claim]: undefined } }),
    ),
  ),
  proofCase(
    'iat a string',
    'dpop_proof_claims_invalid',
    withProof(() => ({ claims: { iat: String(now()) } })),
  ),
  proofCase('htm POST on a GET', 'dpop_proof_method_mismatch', withProof({ method: 'POST' })),
  proofCase(
    'htm get in lower case (methods are case-sensitive)',
    'dpop_proof_method_mismatch',
    withProof({ method: 'get' }),
  ),
  proofCase(
    'htu on another host',
    'dpop_proof_uri_mismatch',
    withProof({ url: 'https://evil.example/balance' }),
  ),
  proofCase(
    'htu with user information (http://user@HOST:PORT/balance)',
    'dpop_proof_uri_mismatch',
    async () => {
      const at = await boundToken();
      return dpop(at, await proof(at, { url: `http://user@${new URL(origin).host}/balance` }));
    },
  ),
  proofCase('htu on another port', 'dpop_proof_uri_mismatch', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, { url: 'http://127.0.0.1:1/balance' }));
  }),
  proofCase('htu for another path', 'dpop_proof_uri_mismatch', async () => {
    const at = await boundToken();
    return dpop(at, await proof(at, { url: `${origin}/transfer` }));
  }),
  {
    ...proofCase(
      'htu from a Host header that is no public origin (localhost:PORT)',
      'dpop_proof_uri_mismatch',
      async () => {
        const at = await boundToken();
        return dpop(at, await proof(at, { url: `http://${localhost()}/balance` }));
      },
    ),
    host: () => localhost(),
  },
  proofCase('htu from X-Forwarded-Host', 'dpop_proof_uri_mismatch', async () => {
    const at = await boundToken();
    return [
      ...dpop(at, await proof(at, { url: 'http://evil.example/balance' })),
      ['X-Forwarded-Host', 'evil.example'],
    ];
  }),
  proofCase(
    'htu from X-Forwarded-Proto (https on this plain origin)',
    'dpop_proof_uri_mismatch',
    async () => {
      const at = await boundToken();
      const url = `https://${new URL(origin).host}/balance`;
      return [...dpop(at, await proof(at, { url })), ['X-Forwarded-Proto', 'https']];
    },
  ),
  proofCase('htu from a Forwarded header (RFC 7239)', 'dpop_proof_uri_mismatch', async () => {
    const at = await boundToken();
    return [
      ...dpop(at, await proof(at, { url: 'https://evil.example/balance' })),
      ['Forwarded', 'host=evil.example;proto=https'],
    ];
  }),
  proofCase(
    'iat 120 s ago (max_age 60 s)',
    'dpop_proof_expired',
    withProof(() => ({ claims: { iat: now() - 120 } })),
  ),
  proofCase(
    'iat 60 s ahead (clock_tolerance 5 s)',
    'dpop_proof_issued_in_future',
    withProof(() => ({ claims: { iat: now() + 60 } })),
  ),
  proofCase('ath of another token', 'dpop_proof_token_hash_mismatch', async () => {
    const at = await boundToken();
    return dpop(
      at,
      await proof(at, { claims: { ath: accessTokenHash(await boundToken(holder, { sub: 'bob' })) } }),
    );
  }),
  {
    name: 'a valid proof from another key than the token is bound to',
    lines: async () => {
      const at = await boundToken();
      return dpop(at, await proof(at, {}, thief));
    },
    code: 'binding_dpop_key_mismatch',
    scheme: 'DPoP',
    error: 'invalid_token',
  },
  {
    name: 'the DPoP scheme with an unbound token and a valid proof',
    lines: async () => {
      const at = await token({ scope: 'view:balance' });
      return dpop(at, await proof(at));
    },
    code: 'binding_token_not_dpop_bound',
    scheme: 'DPoP',
    error: 'invalid_token',
  },
  {
    name: 'an expired DPoP-bound token with a valid proof: the token error under DPoP, the scheme used',
    lines: async () => {
      const at = await boundToken(holder, { iat: now() - 1200, exp: now() - 600 });
      return dpop(at, await proof(at));
    },
    code: 'token_expired',
    scheme: 'DPoP',
    error: 'invalid_token',
  },
  {
    name: 'the DPoP scheme with a token bound by cnf.jwk (a binding not checked here) and a valid proof',
    lines: async () => {
      const at = await token({ scope: 'view:balance', cnf: { jwk: holder.publicJwk } });
      return dpop(at, await proof(at));
    },
    code: 'token_claims_invalid',
    scheme: 'DPoP',
    error: 'invalid_token',
  },
  {
    name: 'the DPoP scheme with a token whose cnf.jkt is not a thumbprint',
    lines: async () => {
      const at = await token({ scope: 'view:balance', cnf: { jkt: 42 } });
      return dpop(at, await proof(at));
    },
    code: 'token_claims_invalid',
    scheme: 'DPoP',
    error: 'invalid_token',
  },
  {
    // Bearer is not offered there: the error goes under DPoP, the only scheme the route accepts.
    name: 'POST /transfer (dpop: required) with an unbound Bearer token',
    method: 'POST',
    target: '/transfer',
    lines: async () => [
      ['Authorization', `Bearer ${await token({ scope: 'transfer:funds', ...mfaLogin() })}`],
    ],
    code: 'binding_required',
    scheme: 'DPoP',
    error: 'invalid_token',
    accepted: ['DPoP'],
  },
  {
    name: 'POST /transfer (dpop: required) with the stolen DPoP-bound transfer token as Bearer',
    method: 'POST',
    target: '/transfer',
    lines: async () => [
      ['Authorization', `Bearer ${await boundToken(holder, { scope: 'transfer:funds', ...mfaLogin() })}`],
    ],
    code: 'binding_dpop_scheme_required',
    scheme: 'DPoP',
    error: 'invalid_token',
    accepted: ['DPoP'],
  },
  {
    name: 'POST /transfer (dpop: required) with the stolen transfer token and a proof from another key',
    method: 'POST',
    target: '/transfer',
    lines: async () => {
      const at = await boundToken(holder, { scope: 'transfer:funds', ...mfaLogin() });
      return dpop(at, await proof(at, { method: 'POST', url: `${origin}/transfer` }, thief));
    },
    code: 'binding_dpop_key_mismatch',
    scheme: 'DPoP',
    error: 'invalid_token',
    accepted: ['DPoP'],
  },
  {
    name: 'strict.test (the issuer requires DPoP) with an unbound Bearer token of that issuer',
    host: () => 'strict.test',
    lines: async () => [['Authorization', `Bearer ${await token({ scope: 'view:balance' }, STRICT_ISSUER)}`]],
    code: 'binding_required',
    scheme: 'Bearer',
    error: 'invalid_token',
  },
  {
    name: 'GET /plain (dpop: off) with a DPoP-bound token as Bearer',
    target: '/plain',
    lines: async () => [['Authorization', `Bearer ${await boundToken()}`]],
    code: 'binding_not_accepted',
    scheme: 'Bearer',
    error: 'invalid_token',
    accepted: ['Bearer'],
  },
  {
    name: 'GET /plain (dpop: off) with the DPoP scheme and a valid proof',
    target: '/plain',
    lines: async () => {
      const at = await boundToken();
      return dpop(at, await proof(at, { url: `${origin}/plain` }));
    },
    code: 'scheme_not_accepted',
    error: 'unauthorized',
    accepted: ['Bearer'],
  },
];

/** `localhost:PORT`: a host the bank service answers for that is none of its public origins. */
function localhost(): string {
  return `localhost:${new URL(origin).port}`;
}

describe('DPoP refusals through real Envoy (docs/sender-constraints.md, "Answers")', () => {
  it.each(REFUSALS)('$name: $code', async (refusal) => {
    const sent = await send(refusal.method ?? 'GET', refusal.target ?? '/balance', await refusal.lines(), {
      ...(refusal.host === undefined ? {} : { host: refusal.host() }),
      ...(refusal.method === 'POST' ? { body: '{"to":"bob","amount":5}' } : {}),
    });
    expectRefused(sent, {
      status: 401,
      code: refusal.code,
      accepted: refusal.accepted ?? BOTH,
      ...(refusal.scheme === undefined ? {} : { scheme: refusal.scheme }),
      error: refusal.error,
    });
  });
});

describe('replays', () => {
  it('refuses the second use of a proof within the window, and takes a fresh proof after it', async () => {
    const at = await boundToken();
    const once = await proof(at);
    expectAllowed(await send('GET', '/balance', dpop(at, once)));
    expectRefused(await send('GET', '/balance', dpop(at, once)), {
      status: 401,
      code: 'dpop_proof_replayed',
      accepted: BOTH,
      scheme: 'DPoP',
      error: 'invalid_dpop_proof',
    });
    expectAllowed(await send('GET', '/balance', dpop(at, await proof(at))));
  });

  it('refuses a refused proof again for what it is, not as a replay (a refusal uses up no jti)', async () => {
    const at = await boundToken();
    const jti = `jti-${randomBytes(8).toString('hex')}`;
    const wrongMethod = await proof(at, { method: 'POST', claims: { jti } });
    for (let i = 0; i < 2; i++) {
      expect((await send('GET', '/balance', dpop(at, wrongMethod))).decision?.['reason']).toBe(
        'dpop_proof_method_mismatch',
      );
    }
    expectAllowed(await send('GET', '/balance', dpop(at, await proof(at, { claims: { jti } }))));
  });

  it(`refuses a replay after the window as expired (strict.test, max_age ${STRICT_MAX_AGE}s)`, async () => {
    const at = await boundToken(holder, {}, STRICT_ISSUER);
    const once = await proof(at, { url: 'https://strict.test/balance' });
    expectAllowed(await send('GET', '/balance', dpop(at, once), { host: 'strict.test' }));
    // Past the window of this proof's own iat (whole seconds), whenever the first use was answered.
    const { iat } = decodeJwt(once);
    await delay(Math.max(0, (iat! + STRICT_MAX_AGE + 1) * 1000 - Date.now()));
    expectRefused(await send('GET', '/balance', dpop(at, once), { host: 'strict.test' }), {
      status: 401,
      code: 'dpop_proof_expired',
      accepted: BOTH,
      scheme: 'DPoP',
      error: 'invalid_dpop_proof',
    });
  });
});

describe('accepted forms: htu compared with the public origin after RFC 3986 normalisation, iat within the window', () => {
  const host = () => new URL(origin).host;
  it.each([
    { name: 'scheme and host in upper case', url: () => `HTTP://${host().toUpperCase()}/balance` },
    { name: 'the second public origin, host in upper case', url: () => 'https://BANK.TEST/balance' },
    { name: 'an explicit default port', url: () => 'https://bank.test:443/balance' },
    { name: 'a query string on htu', url: () => `${origin}/balance?from=htu` },
    { name: 'a fragment on htu', url: () => `${origin}/balance#top` },
    { name: 'dot segments on htu', url: () => `${origin}/accounts/../balance` },
    { name: 'an unreserved character percent-encoded', url: () => `${origin}/%62alance` },
  ])('$name', async ({ url }) => {
    const at = await boundToken();
    expectAllowed(await send('GET', '/balance', dpop(at, await proof(at, { url: url() }))));
  });

  it.each([
    { name: 'iat 50 s ago (max_age 60 s)', offset: -50 },
    { name: 'iat 3 s ahead (clock_tolerance 5 s)', offset: 3 },
  ])('$name', async ({ offset }) => {
    const at = await boundToken();
    expectAllowed(
      await send('GET', '/balance', dpop(at, await proof(at, { claims: { iat: now() + offset } }))),
    );
  });

  it('a query string on the request and none on htu', async () => {
    const at = await boundToken();
    expectAllowed(await send('GET', '/balance?page=2', dpop(at, await proof(at))));
  });

  it('the auth-scheme in lower case (RFC 9110 section 11.1)', async () => {
    const at = await boundToken();
    expectAllowed(
      await send('GET', '/balance', [
        ['Authorization', `dpop ${at}`],
        ['DPoP', await proof(at)],
      ]),
    );
  });
});

describe('happy paths', () => {
  it('a DPoP-bound token with a valid ES256 proof: 200, the identity headers upstream, no Authorization', async () => {
    const at = await boundToken();
    const sent = await send('GET', '/balance', dpop(at, await proof(at)));
    expectAllowed(sent);
    expect(sent.decision).toMatchObject({ policy_service: 'bank', token_binding: 'dpop' });
  });

  it('an Ed25519 (EdDSA) key', async () => {
    const at = await boundToken(edHolder);
    expectAllowed(await send('GET', '/balance', dpop(at, await proof(at, {}, edHolder))));
  });

  it('an unbound Bearer token where DPoP is allowed', async () => {
    const sent = await send('GET', '/balance', [
      ['Authorization', `Bearer ${await token({ scope: 'view:balance' })}`],
    ]);
    expectAllowed(sent);
    expect(sent.decision).toMatchObject({ token_binding: 'bearer' });
  });

  it('strict.test: a DPoP-bound token of the issuer that requires DPoP', async () => {
    const at = await boundToken(holder, {}, STRICT_ISSUER);
    const sent = await send(
      'GET',
      '/balance',
      dpop(at, await proof(at, { url: 'https://strict.test/balance' })),
      {
        host: 'strict.test',
      },
    );
    expectAllowed(sent);
    expect(sent.decision).toMatchObject({ policy_service: 'strict' });
  });

  it('POST /transfer with the scope, an MFA login and a proof for POST', async () => {
    const at = await boundToken(holder, { scope: 'view:balance transfer:funds', ...mfaLogin() });
    const sent = await send(
      'POST',
      '/transfer',
      dpop(at, await proof(at, { method: 'POST', url: `${origin}/transfer` })),
      {
        body: '{"to":"bob","amount":5}',
      },
    );
    expectAllowed(sent, 'view:balance transfer:funds');
  });
});

describe('step-up combined with DPoP on POST /transfer (only the DPoP scheme offered)', () => {
  const transferProof = (at: string) => proof(at, { method: 'POST', url: `${origin}/transfer` });
  const body = '{"to":"bob","amount":5}';

  it('a DPoP-bound token lacking the MFA login: 401 insufficient_user_authentication under DPoP', async () => {
    const at = await boundToken(holder, {
      scope: 'transfer:funds',
      acr: 'urn:bank:pwd',
      amr: ['pwd'],
      auth_time: now() - 30,
    });
    const sent = await send('POST', '/transfer', dpop(at, await transferProof(at)), { body });
    expectRefused(sent, {
      status: 401,
      code: 'insufficient_user_authentication',
      accepted: ['DPoP'],
      scheme: 'DPoP',
      error: 'insufficient_user_authentication',
      extra: { acr_values: 'urn:bank:mfa' },
    });
  });

  it('a DPoP-bound token lacking the scope: 403 insufficient_scope under DPoP', async () => {
    const at = await boundToken(holder, { scope: 'view:balance', ...mfaLogin() });
    const sent = await send('POST', '/transfer', dpop(at, await transferProof(at)), { body });
    expect(sent.challenges).toEqual([
      `DPoP realm="${REALM}", error="insufficient_scope", scope="transfer:funds", algs="${ALGS}"`,
    ]);
    expect({ status: sent.status, code: sent.decision?.['reason'], error: bodyError(sent) }).toEqual({
      status: 403,
      code: 'insufficient_scope',
      error: 'insufficient_scope',
    });
    expect(sent.upstream).toBeUndefined();
  });
});

const onNonce = { host: 'nonce.test' };
const nonceProof = (at: string, nonce?: string) =>
  proof(at, { url: 'https://nonce.test/balance', ...(nonce === undefined ? {} : { claims: { nonce } }) });

describe('server nonces (nonce.test: dpop.nonce required, RFC 9449 section 9)', () => {
  it('round trip: no nonce → 401 use_dpop_nonce with DPoP-Nonce; the same request with it → 200', async () => {
    const at = await boundToken();
    const first = await send('GET', '/balance', dpop(at, await nonceProof(at)), onNonce);
    expectRefused(first, {
      status: 401,
      code: 'dpop_nonce_missing',
      accepted: BOTH,
      scheme: 'DPoP',
      error: 'use_dpop_nonce',
    });
    const nonce = first.headers['dpop-nonce'];
    expect(typeof nonce, 'the DPoP-Nonce header').toBe('string');
    expect(nonce).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/); // RFC 9449 section 8.1: NQCHAR
    const second = await send('GET', '/balance', dpop(at, await nonceProof(at, nonce as string)), onNonce);
    expectAllowed(second);
    expect(second.decision).toMatchObject({ policy_service: 'nonce' });
  });

  it('a forged nonce → 401 use_dpop_nonce with a fresh DPoP-Nonce', async () => {
    const at = await boundToken();
    const sent = await send(
      'GET',
      '/balance',
      dpop(at, await nonceProof(at, 'forged-nonce-0123456789')),
      onNonce,
    );
    expectRefused(sent, {
      status: 401,
      code: 'dpop_nonce_invalid',
      accepted: BOTH,
      scheme: 'DPoP',
      error: 'use_dpop_nonce',
    });
    expect(sent.headers['dpop-nonce']).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/);
  });
});

describe(`the replay store: what one client can cost (dpop.replay_cache_per_key ${REPLAY_SHARE_PER_KEY})`, () => {
  it("records nothing for proofs from another key than a leaked token's: each is refused, the holder goes on", async () => {
    const leaked = await boundToken(holder);
    const before = await replayEntries();
    // The thief floods with the holder's token and proofs of its own key, each distinct and valid but for the binding.
    for (let round = 0; round < 8; round++) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, async () =>
          exchange('GET', '/balance', dpop(leaked, await proof(leaked, {}, thief))),
        ),
      );
      expect(new Set(batch.map((answer) => answer.status))).toEqual(new Set([401]));
    }
    decisionsSeen = (await decisionsUntil(decisionsSeen + 200)).length;
    expect(await replayEntries()).toBe(before);
    expectAllowed(await send('GET', '/balance', dpop(leaked, await proof(leaked))));
  });

  it('answers 429 with Retry-After to a key over its share, while another client keeps being served', async () => {
    // A client of its own (another user, another key) spending its share with valid proofs.
    const flooder = await generateDpopKey('ES256');
    const its = await boundToken(flooder, { sub: 'mallory' });
    let sent = 0;
    let refused: Omit<Sent, 'decision'>[] = [];
    while (refused.length === 0 && sent < REPLAY_SHARE_PER_KEY + 50) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, async () =>
          exchange('GET', '/balance', dpop(its, await proof(its, {}, flooder))),
        ),
      );
      sent += batch.length;
      expect(
        batch.map((answer) => answer.status).filter((status) => status !== 200 && status !== 429),
      ).toEqual([]);
      refused = batch.filter((answer) => answer.status === 429);
    }
    // Its share and no more: entries of earlier tests' keys expire as they will, never this client's.
    expect(sent).toBeGreaterThanOrEqual(REPLAY_SHARE_PER_KEY);
    expect(sent).toBeLessThanOrEqual(REPLAY_SHARE_PER_KEY + 25);
    for (const answer of refused) {
      expect(answer.challenges).toEqual([]);
      expect(bodyError(answer)).toBe('too_many_requests');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(answer.headers['retry-after'])).toBeLessThanOrEqual(61); // max_age 60 s, whole seconds
      expect(answer.upstream).toBeUndefined();
    }
    const logged = (await decisionsUntil(decisionsSeen + sent)).slice(decisionsSeen);
    decisionsSeen += logged.length;
    expect(new Set(logged.filter((line) => line['status'] === 429).map((line) => line['reason']))).toEqual(
      new Set(['dpop_proof_quota_exceeded']),
    );

    // Meanwhile every other client is served: the holder, with fresh proofs of its own key.
    const at = await boundToken(holder);
    for (let i = 0; i < 5; i++) expectAllowed(await send('GET', '/balance', dpop(at, await proof(at))));
  });
});

// The age check itself (exactly nonce_lifetime old accepted, a second more refused, the lifetime given)
// is test/unit/authn/dpop-nonces.test.ts's, with an injected clock; here, without waiting: that the server
// checks the age of a nonce made with its own key against this service's nonce_lifetime.
describe(`a nonce older than dpop.nonce_lifetime (${NONCE_LIFETIME} s on nonce.test)`, () => {
  it('half the lifetime old → 200; the lifetime + 2 s old → 401 use_dpop_nonce with a fresh DPoP-Nonce', async () => {
    const at = await boundToken();
    const nonces = new DpopNonces(NONCE_KEY);
    const young = nonces.issue('nonce', Date.now() - (NONCE_LIFETIME / 2) * 1000);
    const accepted = await send('GET', '/balance', dpop(at, await nonceProof(at, young)), onNonce);
    expectAllowed(accepted);
    expect(accepted.decision).toMatchObject({ policy_service: 'nonce' });

    const old = nonces.issue('nonce', Date.now() - (NONCE_LIFETIME + 2) * 1000);
    const sent = await send('GET', '/balance', dpop(at, await nonceProof(at, old)), onNonce);
    expectRefused(sent, {
      status: 401,
      code: 'dpop_nonce_invalid',
      accepted: BOTH,
      scheme: 'DPoP',
      error: 'use_dpop_nonce',
    });
    expect(sent.headers['dpop-nonce']).toMatch(/^[\x21\x23-\x5B\x5D-\x7E]+$/);
    expect(sent.headers['dpop-nonce']).not.toBe(old);
  });
});
