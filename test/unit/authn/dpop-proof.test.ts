import { createHash, randomUUID, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  base64url,
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DpopNonces } from '../../../src/authn/dpop-nonces.js';
import {
  checkDpopProof,
  MAX_DPOP_PROOF_BYTES,
  type DpopProofContext,
} from '../../../src/authn/dpop-proof.js';
import { DpopProofKeys } from '../../../src/authn/dpop-proof-keys.js';
import { MemoryReplayStore } from '../../../src/authn/dpop-replay-store.js';
import { bearerTokenVerifier } from '../../../src/authn/verify-access-token.js';
import type { DpopProofCheck, ProofRequest } from '../../../src/authz/possession-proof.js';
import { replayOutcome } from '../../../src/authz/sender-constraint.js';
import type { VerifiedToken } from '../../../src/authz/token-verification.js';
import type { DpopProofPolicy } from '../../../src/policy/compiled-policy.js';
import type { StepTracing } from '../../../src/tracing/check-tracing.js';
import { compileRoutes, implicitService } from '../../kit/inline-policy.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';

// RFC 9449 section 4.3 as docs/sender-constraints.md ("What is checked, in order") puts it: every refusal
// code of checkDpopProof, on a frozen clock, with proofs signed by jose.

const SERVICE = 'bank';
const METHOD = 'POST';
/** The service's public origins plus the request path (ProofRequest.uris). */
const URIS = ['https://bank.example/transfer', 'https://bank.example:8443/transfer'];
const HTU = 'https://bank.example/transfer';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
const ATH = createHash('sha256').update(ACCESS_TOKEN).digest('base64url');
const MAX_AGE = 60;
const TOLERANCE = 5;
const NONCE_LIFETIME = 60;

/** ES256, PS256, RS256 and EdDSA: not ES384 (a valid asymmetric algorithm this policy leaves out). */
const POLICY: DpopProofPolicy = {
  algorithms: ['ES256', 'PS256', 'RS256', 'EdDSA'],
  maxAgeSeconds: MAX_AGE,
  clockToleranceSeconds: TOLERANCE,
  nonce: 'off',
  nonceLifetimeSeconds: NONCE_LIFETIME,
};
const NONCE_POLICY: DpopProofPolicy = { ...POLICY, nonce: 'required' };

/** A client's proof key: its private key and the public JWK a proof carries. */
interface ProofKey {
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
}

async function proofKey(alg: string, options: { crv?: string; modulusLength?: number } = {}) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...options });
  return {
    alg,
    privateKey,
    publicJwk: await exportJWK(publicKey),
    privateJwk: await exportJWK(privateKey),
  } satisfies ProofKey;
}

let es256: ProofKey;
let otherEs256: ProofKey;
let es384: ProofKey;
let rs256: ProofKey;
let ps256: ProofKey;
let ed25519: ProofKey;

beforeAll(async () => {
  [es256, otherEs256, es384, rs256, ps256, ed25519] = await Promise.all([
    proofKey('ES256'),
    proofKey('ES256'),
    proofKey('ES384'),
    proofKey('RS256', { modulusLength: 2048 }),
    proofKey('PS256', { modulusLength: 2048 }),
    proofKey('EdDSA', { crv: 'Ed25519' }),
  ]);
});

let clock: ManualClock;
let replayStore: MemoryReplayStore;
let nonces: DpopNonces;
let proofKeys: DpopProofKeys;

beforeEach(() => {
  clock = createManualClock();
  replayStore = new MemoryReplayStore();
  nonces = new DpopNonces(Buffer.alloc(32, 7));
  proofKeys = new DpopProofKeys();
});

interface ProofOptions {
  /** Merged over `{ alg, typ: 'dpop+jwt', jwk }`; `undefined` removes a member. */
  readonly header?: Record<string, unknown>;
  /** Merged over `{ jti, htm, htu, iat, ath }` (a random jti, now); `undefined` removes a claim. */
  readonly claims?: Record<string, unknown>;
  /** Signs this instead of the claims (for a payload that is not a JSON object). */
  readonly rawPayload?: string;
  /** Signs with this instead of the proof key's private key (e.g. an HMAC secret). */
  readonly signingKey?: CryptoKey | Uint8Array;
}

const withoutUndefined = (record: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));

/** A DPoP proof signed by `key` that is valid for the request of these tests unless options say otherwise. */
async function signProof(key: ProofKey, options: ProofOptions = {}): Promise<string> {
  const header = withoutUndefined({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...options.header });
  const claims = withoutUndefined({
    jti: randomUUID(),
    htm: METHOD,
    htu: HTU,
    iat: clock.seconds(),
    ath: ATH,
    ...options.claims,
  });
  const payload = options.rawPayload ?? JSON.stringify(claims);
  return new CompactSign(new TextEncoder().encode(payload))
    .setProtectedHeader(header as never)
    .sign(options.signingKey ?? key.privateKey);
}

/** The replay store's limits in these tests, unless one says otherwise. */
const LIMITS = { total: 1000, perKey: 1000, perSubject: 1000 };

/**
 * Checks `proofs` for the request of these tests, on the test clock, store and nonces, and claims the jti
 * of a valid proof as the core does once the binding holds: a replay, an exhausted share or a full store
 * comes back as the refusal the core would make of it.
 */
async function check(
  proofs: string | readonly string[],
  overrides: Partial<DpopProofContext> = {},
): Promise<DpopProofCheck> {
  const result = await checkOnly(proofs, overrides);
  if (result.kind !== 'valid') return result;
  const refusal = replayOutcome(await result.claim());
  return refusal === undefined
    ? result
    : { kind: 'invalid', code: refusal.code as never, description: refusal.description };
}

/** checkDpopProof alone: a valid proof's jti is not claimed. */
function checkOnly(
  proofs: string | readonly string[],
  overrides: Partial<DpopProofContext> = {},
): Promise<DpopProofCheck> {
  return checkDpopProof({
    proofs: typeof proofs === 'string' ? [proofs] : proofs,
    accessToken: ACCESS_TOKEN,
    method: METHOD,
    uris: URIS,
    service: SERVICE,
    policy: POLICY,
    replay: { store: replayStore, limits: LIMITS, subject: 'https://idp.example/ alice' },
    nonces,
    proofKeys,
    maxRsaKeyBits: 4096,
    nowMs: clock.now(),
    ...overrides,
  });
}

/** The refusal code, or the kind for a check that is not a refusal. */
const outcome = (result: DpopProofCheck): string => (result.kind === 'invalid' ? result.code : result.kind);

const encodeJson = (value: unknown) => base64url.encode(JSON.stringify(value));

/** Replaces the payload of a signed proof, keeping its header and signature. */
function withPayload(proof: string, claims: Record<string, unknown>): string {
  const [header, , signature] = proof.split('.') as [string, string, string];
  return `${header}.${encodeJson(claims)}.${signature}`;
}

/** Replaces the protected header of a signed proof, keeping its payload and signature. */
function withHeader(proof: string, header: Record<string, unknown>): string {
  const [, payload, signature] = proof.split('.') as [string, string, string];
  return `${encodeJson(header)}.${payload}.${signature}`;
}

/**
 * An ES256 proof with exactly this header, signed with WebCrypto directly: for headers jose will not sign
 * (an unknown critical extension).
 */
async function signRawEs256(key: ProofKey, header: Record<string, unknown>): Promise<string> {
  const claims = { jti: randomUUID(), htm: METHOD, htu: HTU, iat: clock.seconds(), ath: ATH };
  const input = `${encodeJson(header)}.${encodeJson(claims)}`;
  const signature = await webcrypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    key.privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${base64url.encode(new Uint8Array(signature))}`;
}

describe('checkDpopProof: a valid proof', () => {
  it('answers none when the request carries no DPoP header', async () => {
    expect(await check([])).toEqual({ kind: 'none' });
  });

  it.each([
    ['ES256', () => es256],
    ['RS256', () => rs256],
    ['PS256', () => ps256],
    ['EdDSA (Ed25519)', () => ed25519],
  ])('accepts a %s proof and returns the RFC 7638 thumbprint of its jwk', async (_alg, key) => {
    const result = await check(await signProof(key()));
    expect(result).toEqual({
      kind: 'valid',
      thumbprint: await calculateJwkThumbprint(key().publicJwk),
      claim: expect.any(Function),
    });
  });

  it('accepts a proof made with SignJWT, as a client library would', async () => {
    const proof = await new SignJWT({ htm: METHOD, htu: HTU, ath: ATH })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: es256.publicJwk })
      .setJti(randomUUID())
      .setIssuedAt(clock.seconds())
      .sign(es256.privateKey);
    expect(await check(proof)).toEqual({
      kind: 'valid',
      thumbprint: await calculateJwkThumbprint(es256.publicJwk, 'sha256'),
      claim: expect.any(Function),
    });
  });

  it('accepts typ in another case (DPOP+JWT): media types compare case-insensitively', async () => {
    expect(outcome(await check(await signProof(es256, { header: { typ: 'DPOP+JWT' } })))).toBe('valid');
  });

  it('accepts a jwk that carries alg, use and kid besides the key', async () => {
    const jwk = { ...es256.publicJwk, alg: 'ES256', use: 'sig', kid: 'client-1' };
    expect(await check(await signProof(es256, { header: { jwk } }))).toEqual({
      kind: 'valid',
      thumbprint: await calculateJwkThumbprint(es256.publicJwk),
      claim: expect.any(Function),
    });
  });

  it('accepts a proof with white space around it (trimmed)', async () => {
    expect(outcome(await check(` ${await signProof(es256)} `))).toBe('valid');
  });

  it('accepts a proof just under 8 KiB', async () => {
    const sized = await proofOfLength(MAX_DPOP_PROOF_BYTES);
    expect(sized.length).toBeLessThanOrEqual(MAX_DPOP_PROOF_BYTES);
    expect(sized.length).toBeGreaterThan(MAX_DPOP_PROOF_BYTES - 4);
    expect(outcome(await check(sized))).toBe('valid');
  });

  it('ignores a nonce when the service does not require one', async () => {
    expect(outcome(await check(await signProof(es256, { claims: { nonce: 'anything' } })))).toBe('valid');
  });
});

/** An ES256 proof padded with an extra claim to the longest length not above `length` (ES256: fixed size). */
async function proofOfLength(length: number): Promise<string> {
  const base = await signProof(es256, { claims: { pad: '' } });
  // Each 3 bytes of payload add 4 characters.
  let pad = Math.floor(((length - base.length) * 3) / 4);
  for (;;) {
    const proof = await signProof(es256, { claims: { pad: 'x'.repeat(pad) } });
    if (proof.length <= length) return proof;
    pad -= 1;
  }
}

/** A row of the refusal table: what the case is, the code expected, and the proofs and context to check. */
type RefusalCase = readonly [
  string,
  string,
  () => Promise<{ proofs: string | readonly string[]; context?: Partial<DpopProofContext> }>,
];

const proof =
  (options: ProofOptions = {}, key?: () => ProofKey) =>
  async () => ({
    proofs: await signProof(key === undefined ? es256 : key(), options),
  });

const REFUSALS: readonly RefusalCase[] = [
  // Section 4.3 check 1: one DPoP header.
  [
    'two DPoP header values',
    'dpop_proof_multiple',
    async () => ({ proofs: [await signProof(es256), await signProof(es256)] }),
  ],
  [
    'the same proof twice',
    'dpop_proof_multiple',
    async () => {
      const one = await signProof(es256);
      return { proofs: [one, one] };
    },
  ],
  [
    'two proofs joined with a comma (as Envoy joins headers)',
    'dpop_proof_multiple',
    async () => ({ proofs: `${await signProof(es256)},${await signProof(es256)}` }),
  ],
  ['one value with a comma', 'dpop_proof_multiple', async () => ({ proofs: 'abc.def.ghi, jkl' })],

  // Check 2: a well-formed JWT.
  ['an empty value', 'dpop_proof_malformed', async () => ({ proofs: '' })],
  ['two parts', 'dpop_proof_malformed', async () => ({ proofs: 'eyJhbGciOiJFUzI1NiJ9.e30' })],
  ['four parts', 'dpop_proof_malformed', async () => ({ proofs: `${await signProof(es256)}.x` })],
  ['garbage in three parts', 'dpop_proof_malformed', async () => ({ proofs: 'not.a.jws' })],
  ['a header that is not JSON', 'dpop_proof_malformed', async () => ({ proofs: 'bm90IGpzb24.e30.c2ln' })],
  [
    'a JWE-shaped value (five parts)',
    'dpop_proof_malformed',
    async () => ({
      proofs: `${encodeJson({ alg: 'RSA-OAEP', enc: 'A256GCM', typ: 'dpop+jwt' })}.a2V5.aXY.Y2lwaGVy.dGFn`,
    }),
  ],
  [
    'a proof over 8 KiB, however well signed',
    'dpop_proof_malformed',
    async () => ({ proofs: await signProof(es256, { claims: { pad: 'x'.repeat(MAX_DPOP_PROOF_BYTES) } }) }),
  ],
  [
    'a payload that is a JSON array, not a claims set',
    'dpop_proof_malformed',
    proof({ rawPayload: JSON.stringify([{ jti: 'a' }]) }),
  ],

  // Check 4: typ.
  ['no typ', 'dpop_proof_type_invalid', proof({ header: { typ: undefined } })],
  ['typ JWT', 'dpop_proof_type_invalid', proof({ header: { typ: 'JWT' } })],
  ['typ at+jwt (an access token)', 'dpop_proof_type_invalid', proof({ header: { typ: 'at+jwt' } })],
  ['typ not a string', 'dpop_proof_type_invalid', proof({ header: { typ: ['dpop+jwt'] } })],

  // Check 5: an asymmetric algorithm the policy lists.
  [
    'alg none, unsigned',
    'dpop_proof_algorithm_not_allowed',
    async () => ({
      proofs: `${encodeJson({ alg: 'none', typ: 'dpop+jwt', jwk: es256.publicJwk })}.${encodeJson({
        jti: randomUUID(),
        htm: METHOD,
        htu: HTU,
        iat: clock.seconds(),
        ath: ATH,
      })}.`,
    }),
  ],
  [
    'HS256, signed with a secret',
    'dpop_proof_algorithm_not_allowed',
    proof({
      header: { alg: 'HS256', jwk: { kty: 'oct', k: base64url.encode('s'.repeat(32)) } },
      signingKey: new TextEncoder().encode('s'.repeat(32)),
    }),
  ],
  [
    'HS256 with the public EC jwk in the header',
    'dpop_proof_algorithm_not_allowed',
    proof({ header: { alg: 'HS256' }, signingKey: new TextEncoder().encode('s'.repeat(32)) }),
  ],
  ['ES384, asymmetric but not in the list', 'dpop_proof_algorithm_not_allowed', proof({}, () => es384)],
  [
    'no alg at all (the header swapped after signing)',
    'dpop_proof_algorithm_not_allowed',
    async () => ({ proofs: withHeader(await signProof(es256), { typ: 'dpop+jwt', jwk: es256.publicJwk }) }),
  ],

  // Check 7: a public key in the header.
  ['no jwk', 'dpop_proof_key_invalid', proof({ header: { jwk: undefined } })],
  ['a jwk that is an array', 'dpop_proof_key_invalid', proof({ header: { jwk: [{ kty: 'EC' }] } })],
  ['a jwk that is a string', 'dpop_proof_key_invalid', proof({ header: { jwk: 'EC P-256' } })],
  ['a jwk that is null', 'dpop_proof_key_invalid', proof({ header: { jwk: null } })],
  [
    'a private EC jwk (with d)',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: es256.privateJwk } }) }),
  ],
  [
    'a private RSA jwk (with d, p, q, ...)',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(rs256, { header: { jwk: rs256.privateJwk } }) }),
  ],
  [
    'a public jwk with only a stray d member',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, d: 'AA' } } }) }),
  ],
  [
    'a symmetric oct jwk',
    'dpop_proof_key_invalid',
    proof({ header: { jwk: { kty: 'oct', k: base64url.encode('s'.repeat(32)) } } }),
  ],
  [
    'an unknown kty',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, kty: 'XYZ' } } }) }),
  ],
  [
    'a jwk without kty',
    'dpop_proof_key_invalid',
    async () => ({
      proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, kty: undefined } } }),
    }),
  ],
  [
    'an EC jwk whose point is not on the curve',
    'dpop_proof_key_invalid',
    async () => {
      const x = es256.publicJwk.x!;
      const moved = `${x.slice(0, 10)}${x[10] === 'A' ? 'B' : 'A'}${x.slice(11)}`;
      return { proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, x: moved } } }) };
    },
  ],
  [
    'an EC jwk with a truncated coordinate',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, x: 'AAAA' } } }) }),
  ],
  [
    'an RSA jwk in an ES256 proof',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: rs256.publicJwk } }) }),
  ],
  [
    'a P-384 jwk in an ES256 proof',
    'dpop_proof_key_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: es384.publicJwk } }) }),
  ],

  // Check 6: the signature, by the key in the header.
  [
    'signed by another key than the jwk',
    'dpop_proof_signature_invalid',
    async () => ({ proofs: await signProof(es256, { header: { jwk: otherEs256.publicJwk } }) }),
  ],
  [
    'a tampered payload',
    'dpop_proof_signature_invalid',
    async () => {
      const signed = await signProof(es256, { claims: { jti: 'j-1', htm: 'GET' } });
      return {
        proofs: withPayload(signed, { jti: 'j-1', htm: METHOD, htu: HTU, iat: clock.seconds(), ath: ATH }),
      };
    },
  ],
  [
    'a signature cut short',
    'dpop_proof_signature_invalid',
    async () => ({ proofs: (await signProof(es256)).slice(0, -4) }),
  ],

  // Check 3: the claims and their types.
  ['no jti', 'dpop_proof_claims_invalid', proof({ claims: { jti: undefined } })],
  ['an empty jti', 'dpop_proof_claims_invalid', proof({ claims: { jti: '' } })],
  ['a numeric jti', 'dpop_proof_claims_invalid', proof({ claims: { jti: 42 } })],
  ['a jti of 257 characters', 'dpop_proof_claims_invalid', proof({ claims: { jti: 'j'.repeat(257) } })],
  ['no htm', 'dpop_proof_claims_invalid', proof({ claims: { htm: undefined } })],
  ['an htm that is an array', 'dpop_proof_claims_invalid', proof({ claims: { htm: [METHOD] } })],
  ['no htu', 'dpop_proof_claims_invalid', proof({ claims: { htu: undefined } })],
  ['an htu that is an object', 'dpop_proof_claims_invalid', proof({ claims: { htu: { href: HTU } } })],
  ['no iat', 'dpop_proof_claims_invalid', proof({ claims: { iat: undefined } })],
  ['an iat that is a string', 'dpop_proof_claims_invalid', proof({ claims: { iat: '1893456000' } })],
  ['no ath', 'dpop_proof_claims_invalid', proof({ claims: { ath: undefined } })],
  ['an ath that is a number', 'dpop_proof_claims_invalid', proof({ claims: { ath: 7 } })],
  ['an nbf in the future', 'dpop_proof_claims_invalid', proof({ claims: { nbf: 1_999_999_999 } })],

  // Check 8: the method.
  ['htm GET for a POST', 'dpop_proof_method_mismatch', proof({ claims: { htm: 'GET' } })],
  ['htm in lower case (post for POST)', 'dpop_proof_method_mismatch', proof({ claims: { htm: 'post' } })],
  [
    'htm get for GET',
    'dpop_proof_method_mismatch',
    async () => ({ proofs: await signProof(es256, { claims: { htm: 'get' } }), context: { method: 'GET' } }),
  ],

  // Check 9: the URI (more cases in the table below).
  [
    'htu of another host',
    'dpop_proof_uri_mismatch',
    proof({ claims: { htu: 'https://evil.example/transfer' } }),
  ],

  // Check 11: iat.
  [
    'iat older than max_age',
    'dpop_proof_expired',
    async () => ({ proofs: await signProof(es256, { claims: { iat: clock.seconds() - MAX_AGE - 1 } }) }),
  ],
  [
    'an exp in the past',
    'dpop_proof_expired',
    async () => ({ proofs: await signProof(es256, { claims: { exp: clock.seconds() - TOLERANCE - 1 } }) }),
  ],
  [
    'iat beyond clock_tolerance',
    'dpop_proof_issued_in_future',
    async () => ({ proofs: await signProof(es256, { claims: { iat: clock.seconds() + TOLERANCE + 1 } }) }),
  ],

  // Check 12: ath.
  [
    'ath of another access token',
    'dpop_proof_token_hash_mismatch',
    proof({ claims: { ath: createHash('sha256').update('another-token').digest('base64url') } }),
  ],
  [
    'ath in padded base64 rather than base64url',
    'dpop_proof_token_hash_mismatch',
    proof({ claims: { ath: createHash('sha256').update(ACCESS_TOKEN).digest('base64') } }),
  ],
  [
    'ath of the token as hex',
    'dpop_proof_token_hash_mismatch',
    proof({ claims: { ath: createHash('sha256').update(ACCESS_TOKEN).digest('hex') } }),
  ],

  // Refused, but under the wrong code today (see the report of these tests).
  [
    'a crit header naming an extension this server does not understand (RFC 7515 section 4.1.11)',
    'dpop_proof_malformed',
    async () => ({
      proofs: await signRawEs256(es256, {
        alg: 'ES256',
        typ: 'dpop+jwt',
        jwk: es256.publicJwk,
        crit: ['urn:example:ext'],
        'urn:example:ext': true,
      }),
    }),
  ],
  [
    'a public jwk whose key_ops allow only sign (WebCrypto refuses to import it)',
    'dpop_proof_key_invalid',
    async () => ({
      proofs: await signProof(es256, { header: { jwk: { ...es256.publicJwk, key_ops: ['sign'] } } }),
    }),
  ],
];

describe('checkDpopProof: each refusal', () => {
  it.each(REFUSALS)('refuses %s: %s', async (_case, code, make) => {
    const { proofs, context } = await make();
    const result = await check(proofs, context);
    expect(result).toMatchObject({ kind: 'invalid', code });
    expect(outcome(result)).toBe(code);
    // Nothing refused is remembered: no jti used up.
    expect(replayStore.size).toBe(0);
  });

  it('keeps the key of a proof whose signature verified, and only that one', async () => {
    const forged = await signProof(es256, { signingKey: otherEs256.privateKey });
    expect(outcome(await check(forged))).toBe('dpop_proof_signature_invalid');
    expect(proofKeys.size).toBe(0);
    expect(outcome(await check(await signProof(es256)))).toBe('valid');
    expect(proofKeys.size).toBe(1);
  });

  it('refuses a proof key over max_rsa_key_bits before checking its signature', async () => {
    const result = await check(await signProof(rs256), { maxRsaKeyBits: 2048 - 1 });
    expect(result).toMatchObject({ kind: 'invalid', code: 'dpop_proof_key_invalid' });
    expect(outcome(await check(await signProof(rs256), { maxRsaKeyBits: 2048 }))).toBe('valid');
  });

  it('covers every DPoP proof code checkDpopProof can give', () => {
    const codes = new Set(REFUSALS.map(([, code]) => code));
    // The others have their own tests below: replays, the full cache and nonces.
    for (const code of [
      'dpop_proof_multiple',
      'dpop_proof_malformed',
      'dpop_proof_type_invalid',
      'dpop_proof_algorithm_not_allowed',
      'dpop_proof_key_invalid',
      'dpop_proof_signature_invalid',
      'dpop_proof_claims_invalid',
      'dpop_proof_method_mismatch',
      'dpop_proof_uri_mismatch',
      'dpop_proof_expired',
      'dpop_proof_issued_in_future',
      'dpop_proof_token_hash_mismatch',
    ]) {
      expect(codes).toContain(code);
    }
  });

  it('accepts a jti of exactly 256 characters', async () => {
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j'.repeat(256) } })))).toBe('valid');
  });

  it('never echoes the proof or its claims in the description', async () => {
    const result = await check(await signProof(es256, { claims: { htm: 'SECRET-METHOD' } }));
    expect(result.kind).toBe('invalid');
    expect(JSON.stringify(result)).not.toContain('SECRET-METHOD');
  });
});

describe('checkDpopProof: htu against the public origins plus path', () => {
  it.each([
    ['the first public origin', 'https://bank.example/transfer'],
    ['the second public origin, with its port', 'https://bank.example:8443/transfer'],
    ['with a query (ignored)', 'https://bank.example/transfer?q=1'],
    ['with a fragment (ignored)', 'https://bank.example/transfer#top'],
    ['with a query and a fragment', 'https://bank.example/transfer?amount=5&to=bob#x'],
    ['with scheme and host in another case and the default port', 'HTTPS://Bank.Example:443/transfer'],
    ['with the default port', 'https://bank.example:443/transfer'],
    ['with a percent-encoded unreserved letter', 'https://bank.example/tr%61nsfer'],
    ['with a dot segment', 'https://bank.example/x/../transfer'],
  ])('accepts %s: %s', async (_case, htu) => {
    expect(outcome(await check(await signProof(es256, { claims: { htu } })))).toBe('valid');
  });

  it.each([
    ['another host', 'https://evil.example/transfer'],
    ['a sub-domain', 'https://api.bank.example/transfer'],
    ['another path', 'https://bank.example/transfers'],
    ['a trailing slash', 'https://bank.example/transfer/'],
    ['the path in another case', 'https://bank.example/Transfer'],
    ['another scheme', 'http://bank.example/transfer'],
    ['another port', 'https://bank.example:8444/transfer'],
    ['the port of http on https', 'https://bank.example:80/transfer'],
    ['a relative reference', '/transfer'],
    ['not a URI', 'transfer'],
    ['user information', 'https://alice@bank.example/transfer'],
    ['another scheme altogether', 'wss://bank.example/transfer'],
    ['an encoded slash for a real one', 'https://bank.example%2Ftransfer'],
  ])('refuses %s: %s', async (_case, htu) => {
    expect(await check(await signProof(es256, { claims: { htu } }))).toMatchObject({
      kind: 'invalid',
      code: 'dpop_proof_uri_mismatch',
    });
  });

  it.each([
    ['%7e for ~', 'https://bank.example/~alice', 'https://bank.example/%7ealice'],
    ['%7E for ~', 'https://bank.example/~alice', 'https://bank.example/%7Ealice'],
    ['~ for %7e', 'https://bank.example/%7ealice', 'https://bank.example/~alice'],
    ['%2f for %2F (reserved: case only)', 'https://bank.example/a%2Fb', 'https://bank.example/a%2fb'],
    ['the host in upper case', 'https://bank.example/x', 'HTTPS://Bank.Example:443/x'],
  ])('compares percent-encoding and case normalised: %s', async (_case, uri, htu) => {
    const proofs = await signProof(es256, { claims: { htu } });
    expect(outcome(await check(proofs, { uris: [uri] }))).toBe('valid');
  });

  it('does not decode a reserved character: %2F is not /', async () => {
    const proofs = await signProof(es256, { claims: { htu: 'https://bank.example/a%2Fb' } });
    expect(outcome(await check(proofs, { uris: ['https://bank.example/a/b'] }))).toBe(
      'dpop_proof_uri_mismatch',
    );
  });

  it('refuses every htu when the service has no URI for the request', async () => {
    expect(outcome(await check(await signProof(es256), { uris: [] }))).toBe('dpop_proof_uri_mismatch');
  });
});

describe('checkDpopProof: iat within max_age and clock_tolerance', () => {
  it.each([
    ['exactly max_age old', -MAX_AGE, 'valid'],
    ['max_age + 1 s old', -MAX_AGE - 1, 'dpop_proof_expired'],
    ['an hour old', -3600, 'dpop_proof_expired'],
    ['issued now', 0, 'valid'],
    ['exactly clock_tolerance ahead', TOLERANCE, 'valid'],
    ['clock_tolerance + 1 s ahead', TOLERANCE + 1, 'dpop_proof_issued_in_future'],
    ['a year ahead', 365 * 24 * 3600, 'dpop_proof_issued_in_future'],
  ])('an iat %s is %s', async (_case, offset, expected) => {
    const proofs = await signProof(es256, { claims: { iat: clock.seconds() + offset } });
    expect(outcome(await check(proofs))).toBe(expected);
  });

  it('uses the policy: with max_age 10s, a proof 11 s old is expired', async () => {
    const proofs = await signProof(es256, { claims: { iat: clock.seconds() - 11 } });
    expect(outcome(await check(proofs, { policy: { ...POLICY, maxAgeSeconds: 10 } }))).toBe(
      'dpop_proof_expired',
    );
  });

  it('uses the policy: with clock_tolerance 0, a proof 1 s ahead is issued in the future', async () => {
    const proofs = await signProof(es256, { claims: { iat: clock.seconds() + 1 } });
    expect(outcome(await check(proofs, { policy: { ...POLICY, clockToleranceSeconds: 0 } }))).toBe(
      'dpop_proof_issued_in_future',
    );
  });

  it('checks age against the clock the caller gives, not the real one', async () => {
    const proofs = await signProof(es256);
    clock.advance((MAX_AGE + 1) * 1000);
    expect(outcome(await check(proofs))).toBe('dpop_proof_expired');
  });
});

describe('checkDpopProof: replays (jti keyed by the key thumbprint)', () => {
  it('refuses the same proof the second time: dpop_proof_replayed', async () => {
    const proofs = await signProof(es256);
    expect(outcome(await check(proofs))).toBe('valid');
    expect(await check(proofs)).toMatchObject({ kind: 'invalid', code: 'dpop_proof_replayed' });
  });

  it('refuses a new proof with a jti this key used within the window', async () => {
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe('valid');
    clock.advance(10_000);
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe(
      'dpop_proof_replayed',
    );
  });

  it('accepts the same jti from another key: one client never blocks another', async () => {
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe('valid');
    expect(outcome(await check(await signProof(otherEs256, { claims: { jti: 'j-1' } })))).toBe('valid');
    expect(outcome(await check(await signProof(ed25519, { claims: { jti: 'j-1' } })))).toBe('valid');
  });

  it('accepts the jti again once a proof with its iat could no longer be accepted', async () => {
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe('valid');
    clock.advance(MAX_AGE * 1000);
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe(
      'dpop_proof_replayed',
    );
    clock.advance(1000);
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe('valid');
  });

  it('does not use up the jti of a proof refused for its htm', async () => {
    const refused = await signProof(es256, { claims: { jti: 'j-1', htm: 'GET' } });
    expect(outcome(await check(refused))).toBe('dpop_proof_method_mismatch');
    expect(replayStore.size).toBe(0);
    expect(outcome(await check(await signProof(es256, { claims: { jti: 'j-1' } })))).toBe('valid');
  });

  it('does not use up the jti of a proof refused for a missing nonce', async () => {
    const refused = await check(await signProof(es256, { claims: { jti: 'j-1' } }), {
      policy: NONCE_POLICY,
    });
    expect(outcome(refused)).toBe('dpop_nonce_missing');
    const nonce = refused.kind === 'invalid' ? refused.nonce : undefined;
    const accepted = await check(await signProof(es256, { claims: { jti: 'j-1', nonce } }), {
      policy: NONCE_POLICY,
    });
    expect(outcome(accepted)).toBe('valid');
  });

  it('remembers nothing until the core claims the jti: a valid proof whose binding fails uses up nothing', async () => {
    const proofs = await signProof(es256);
    const valid = await checkOnly(proofs);
    expect(valid.kind).toBe('valid');
    expect(replayStore.size).toBe(0);
    // Checked again and claimed this time (its key matched the token's): accepted once, then a replay.
    expect(outcome(await check(proofs))).toBe('valid');
    expect(outcome(await check(proofs))).toBe('dpop_proof_replayed');
  });

  it("claims the proof's key and the token's subject: a key over its share is refused, others are not", async () => {
    const limits = { total: 1000, perKey: 2, perSubject: 1000 };
    const replay = { store: replayStore, limits, subject: 'https://idp.example/ alice' };
    expect(outcome(await check(await signProof(es256), { replay }))).toBe('valid');
    expect(outcome(await check(await signProof(es256), { replay }))).toBe('valid');
    expect(outcome(await check(await signProof(es256), { replay }))).toBe('dpop_proof_quota_exceeded');
    expect(outcome(await check(await signProof(otherEs256), { replay }))).toBe('valid');
  });

  it('answers dpop_replay_cache_full when the store is full of live entries, and takes proofs again later', async () => {
    const small = {
      replay: { store: replayStore, limits: { total: 2, perKey: 2, perSubject: 2 }, subject: undefined },
    };
    expect(outcome(await check(await signProof(es256), small))).toBe('valid');
    expect(outcome(await check(await signProof(otherEs256), small))).toBe('valid');
    const full = await check(await signProof(ed25519), small);
    expect(full).toMatchObject({ kind: 'invalid', code: 'dpop_replay_cache_full' });
    expect(replayStore.size).toBe(2);

    clock.advance((MAX_AGE + 1) * 1000);
    expect(outcome(await check(await signProof(es256), small))).toBe('valid');
  });

  it('answers replayed, not full, for a replay when the store is full', async () => {
    const proofs = await signProof(es256);
    const one = {
      replay: { store: replayStore, limits: { total: 1, perKey: 1, perSubject: 1 }, subject: undefined },
    };
    expect(outcome(await check(proofs, one))).toBe('valid');
    expect(outcome(await check(proofs, one))).toBe('dpop_proof_replayed');
  });
});

describe('checkDpopProof: server nonces (nonce: required)', () => {
  const required = { policy: NONCE_POLICY };

  /** The fresh nonce a refusal carries, checked to be one the service's DpopNonces accepts now. */
  function freshNonce(result: DpopProofCheck): string {
    if (result.kind !== 'invalid' || result.nonce === undefined) throw new Error('expected a fresh nonce');
    expect(nonces.accepts(result.nonce, SERVICE, clock.now(), NONCE_LIFETIME)).toBe(true);
    return result.nonce;
  }

  it('refuses a proof without a nonce with dpop_nonce_missing and a fresh nonce', async () => {
    const result = await check(await signProof(es256), required);
    expect(result).toMatchObject({ kind: 'invalid', code: 'dpop_nonce_missing' });
    freshNonce(result);
  });

  it('accepts a proof carrying the nonce it was given', async () => {
    const nonce = freshNonce(await check(await signProof(es256), required));
    const result = await check(await signProof(es256, { claims: { nonce } }), required);
    expect(result).toEqual({
      kind: 'valid',
      thumbprint: await calculateJwkThumbprint(es256.publicJwk),
      claim: expect.any(Function),
    });
  });

  it('accepts a nonce issued by another DpopNonces with the same key (another worker or replica)', async () => {
    const nonce = new DpopNonces(Buffer.alloc(32, 7)).issue(SERVICE, clock.now());
    expect(outcome(await check(await signProof(es256, { claims: { nonce } }), required))).toBe('valid');
  });

  it.each([
    ['garbage', () => 'not-a-nonce'],
    ['an empty string', () => ''],
    ['a number', () => 12345],
    ['a nonce of another service', () => nonces.issue('other-service', clock.now())],
    ['a nonce made with another key', () => DpopNonces.withRandomKey().issue(SERVICE, clock.now())],
    ['an expired nonce', () => nonces.issue(SERVICE, clock.now() - (NONCE_LIFETIME + 1) * 1000)],
  ])('refuses %s with dpop_nonce_invalid and a fresh nonce', async (_case, nonce) => {
    const result = await check(await signProof(es256, { claims: { nonce: nonce() } }), required);
    expect(result).toMatchObject({ kind: 'invalid', code: 'dpop_nonce_invalid' });
    freshNonce(result);
  });

  it('refuses a nonce once nonce_lifetime has passed, and accepts it until then', async () => {
    const nonce = nonces.issue(SERVICE, clock.now());
    clock.advance(NONCE_LIFETIME * 1000);
    expect(outcome(await check(await signProof(es256, { claims: { nonce } }), required))).toBe('valid');
    clock.advance(1000);
    expect(outcome(await check(await signProof(es256, { claims: { nonce } }), required))).toBe(
      'dpop_nonce_invalid',
    );
  });

  it('gives no nonce with other refusals', async () => {
    const result = await check(await signProof(es256, { claims: { htm: 'GET' } }), required);
    expect(result).toEqual({
      kind: 'invalid',
      code: 'dpop_proof_method_mismatch',
      description: expect.any(String),
    });
  });
});

describe('bearerTokenVerifier.prove', () => {
  /**
   * The fixture's client certificate and its RFC 8705 thumbprint, as openssl computes it (see
   * test/unit/demo/dev-token/mint-dev-token.test.ts).
   */
  const CERTIFICATE_PEM = readFileSync(
    new URL('../../fixtures/tls/client-certificate.pem', import.meta.url),
    'utf8',
  );
  const CERTIFICATE_THUMBPRINT = 'uQB7FYHcMssqK-cKBN0R7v74Rgu0jKYHMkEzUXcqgzg';

  const policy = compileRoutes('{ methods: [POST], path: /transfer, scopes: [transfer:funds] }');
  const service = implicitService(policy);

  /** The verified token the proofs go with (prove reads the raw token for ath). */
  const token = (): VerifiedToken => ({
    issuer: 'https://idp.example/',
    subject: 'alice',
    scopes: new Set(['transfer:funds']),
    acr: undefined,
    amr: new Set(),
    authTime: undefined,
    audiences: new Set(['https://my-banking-api']),
    headerClaims: new Map(),
    confirmation: {},
  });

  const requestWith = (overrides: Partial<ProofRequest>): ProofRequest => ({
    token: token(),
    method: METHOD,
    uris: URIS,
    service: service.name,
    dpop: service.dpop,
    certificate: true,
    dpopProofs: [],
    clientCertificate: encodeURIComponent(CERTIFICATE_PEM),
    ...overrides,
  });

  /** What claiming the jti of the proof `request` carries finds (the proof must be valid). */
  const claimOf = async (verifier: ReturnType<typeof bearerTokenVerifier>, request: ProofRequest) => {
    const { dpop } = await verifier.prove(ACCESS_TOKEN, request);
    if (dpop.kind !== 'valid') throw new Error(`expected a valid proof, got ${JSON.stringify(dpop)}`);
    return dpop.claim();
  };

  const verifierFor = () =>
    bearerTokenVerifier({
      policy,
      keysFor: () => undefined,
      now: clock.now,
      possession: { replayStore, nonces, proofKeys: new DpopProofKeys() },
    });

  it('checks both the DPoP proof and the client certificate a ProofRequest asks for', async () => {
    const proofs = [await signProof(es256)];
    const result = await verifierFor().prove(ACCESS_TOKEN, requestWith({ dpopProofs: proofs }));
    expect(result).toEqual({
      dpop: {
        kind: 'valid',
        thumbprint: await calculateJwkThumbprint(es256.publicJwk),
        claim: expect.any(Function),
      },
      certificate: { kind: 'present', thumbprint: CERTIFICATE_THUMBPRINT },
    });
  });

  it("checks the proof with the request's dpop settings (the service's compiled ones)", async () => {
    const tolerance = service.dpop.clockToleranceSeconds;
    const ahead = async (seconds: number) => {
      const proofs = [await signProof(es256, { claims: { iat: clock.seconds() + seconds } })];
      return (await verifierFor().prove(ACCESS_TOKEN, requestWith({ dpopProofs: proofs }))).dpop;
    };
    expect((await ahead(tolerance)).kind).toBe('valid');
    expect(await ahead(tolerance + 1)).toMatchObject({ code: 'dpop_proof_issued_in_future' });
    const strict = { ...service.dpop, clockToleranceSeconds: 0 };
    const proofs = [await signProof(es256, { claims: { iat: clock.seconds() + 1 } })];
    expect(
      (await verifierFor().prove(ACCESS_TOKEN, requestWith({ dpopProofs: proofs, dpop: strict }))).dpop,
    ).toMatchObject({ code: 'dpop_proof_issued_in_future' });
  });

  it("claims the jti in the policy's replay store limits, under the token's issuer and subject", async () => {
    const tiny = { ...policy, dpopReplayLimits: { total: 1000, perKey: 1000, perSubject: 1 } };
    const verifier = bearerTokenVerifier({
      policy: tiny,
      keysFor: () => undefined,
      now: clock.now,
      possession: { replayStore, nonces, proofKeys: new DpopProofKeys() },
    });
    const claim = async (key = es256) => {
      const { dpop } = await verifier.prove(
        ACCESS_TOKEN,
        requestWith({ dpopProofs: [await signProof(key)], certificate: false }),
      );
      if (dpop.kind !== 'valid') throw new Error(`expected a valid proof, got ${JSON.stringify(dpop)}`);
      return dpop.claim();
    };
    expect(await claim()).toEqual({ kind: 'fresh' });
    // alice's one entry is her share, whichever key signs next.
    expect(await claim(otherEs256)).toMatchObject({ kind: 'over_quota', share: 'subject' });
  });

  it('checks ath against the token it is given', async () => {
    const request = requestWith({ dpopProofs: [await signProof(es256)], certificate: false });
    expect(await verifierFor().prove('another.access.token', request)).toEqual({
      dpop: { kind: 'invalid', code: 'dpop_proof_token_hash_mismatch', description: expect.any(String) },
      certificate: { kind: 'none' },
    });
  });

  it('checks nothing the request does not ask for, whatever the request carries', async () => {
    const request = requestWith({ dpop: undefined, certificate: false, dpopProofs: ['garbage'] });
    expect(await verifierFor().prove(ACCESS_TOKEN, request)).toEqual({
      dpop: { kind: 'none' },
      certificate: { kind: 'none' },
    });
  });

  it('answers none for each proof asked for but absent', async () => {
    const request = requestWith({ dpopProofs: [], clientCertificate: undefined });
    expect(await verifierFor().prove(ACCESS_TOKEN, request)).toEqual({
      dpop: { kind: 'none' },
      certificate: { kind: 'none' },
    });
  });

  it('remembers jti values across verifiers sharing the possession state (a policy reload)', async () => {
    const request = requestWith({ dpopProofs: [await signProof(es256)], certificate: false });
    expect(await claimOf(verifierFor(), request)).toEqual({ kind: 'fresh' });
    expect(await claimOf(verifierFor(), request)).toEqual({ kind: 'replayed' });
  });

  it('runs the proof check and the claim of its jti as child spans of the Check (tracing on)', async () => {
    const steps: { name: string; outcome: Record<string, unknown> }[] = [];
    const tracing: StepTracing = {
      step: async (name, _attributes, run, outcome) => {
        const result = await run();
        steps.push({ name, outcome: outcome?.(result) ?? {} });
        return result;
      },
      annotate: () => undefined,
    };
    const verifier = bearerTokenVerifier({
      policy,
      keysFor: () => undefined,
      now: clock.now,
      possession: { replayStore, nonces, proofKeys: new DpopProofKeys() },
      steps: tracing,
    });
    const request = requestWith({ dpopProofs: [await signProof(es256)], certificate: false });
    expect(await claimOf(verifier, request)).toEqual({ kind: 'fresh' });
    expect(await claimOf(verifier, request)).toEqual({ kind: 'replayed' });
    const refused = await verifier.prove('another.access.token', request);
    expect(refused.dpop).toMatchObject({ kind: 'invalid' });
    expect(steps).toEqual([
      { name: 'authz.check_dpop_proof', outcome: { 'authz.dpop.proof': 'valid' } },
      { name: 'authz.claim_dpop_proof', outcome: { 'authz.dpop.replay': 'fresh' } },
      { name: 'authz.check_dpop_proof', outcome: { 'authz.dpop.proof': 'valid' } },
      { name: 'authz.claim_dpop_proof', outcome: { 'authz.dpop.replay': 'replayed' } },
      { name: 'authz.check_dpop_proof', outcome: { 'authz.dpop.proof': 'dpop_proof_token_hash_mismatch' } },
    ]);
  });

  it('keeps a replay cache of its own when given no possession state', async () => {
    const verifier = bearerTokenVerifier({ policy, keysFor: () => undefined, now: clock.now });
    const request = requestWith({ dpopProofs: [await signProof(es256)], certificate: false });
    expect(await claimOf(verifier, request)).toEqual({ kind: 'fresh' });
    expect(await claimOf(verifier, request)).toEqual({ kind: 'replayed' });
    expect(replayStore.size).toBe(0);
  });
});
