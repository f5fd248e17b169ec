import { generateKeyPairSync } from 'node:crypto';
import { base64url, exportJWK, type JWK } from 'jose';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IssuerKeys, type KeyRejectionEvent } from '../../../src/authn/issuer-keys.js';
import {
  checkKeySet,
  KEY_REJECTION_REASONS,
  type KeyRejectionReason,
} from '../../../src/authn/key-set-check.js';
import { verifyAccessToken, type VerifyContext } from '../../../src/authn/verify-access-token.js';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import type { CompiledPolicy } from '../../../src/policy/compiled-policy.js';
import { DEMO_AUDIENCE, DEMO_ISSUER, demoPolicyText } from '../../kit/inline-policy.js';
import { createKeySetFetch, recordWaits, settle, type FakeKeySetFetch } from '../../kit/key-set-fetch.js';
import { createManualClock, type ManualClock } from '../../kit/manual-clock.js';
import { generateTestKey, signTestToken, type TestKey } from '../../kit/tokens.js';

let rsa: TestKey; // RS256
let ec: TestKey; // ES256 (P-256)
let ed: TestKey; // EdDSA (Ed25519)

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([
    generateTestKey('rsa-1'),
    generateTestKey('ec-1', 'ES256'),
    generateTestKey('ed-1', 'EdDSA'),
  ]);
});

/** The issuer algorithms most cases check against. */
const ALL_KINDS = ['RS256', 'ES256', 'EdDSA'];

/** `jwk` with one base64url member changed in its last byte: for an EC `y`, a point off the curve. */
function withFlippedByte(jwk: JWK, member: 'y'): JWK {
  const bytes = base64url.decode(jwk[member]!);
  bytes[bytes.length - 1]! ^= 0x01;
  return { ...jwk, [member]: base64url.encode(bytes) };
}

function withoutMember(jwk: JWK, member: keyof JWK): JWK {
  const copy: JWK = { ...jwk };
  delete copy[member];
  return copy;
}

/** A real 1024-bit RSA public key, as a JWK. */
function shortRsaKey(): JWK {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  return { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'rsa-1024', alg: 'RS256', use: 'sig' };
}

interface RejectionCase {
  readonly key: () => unknown;
  readonly algorithms?: readonly string[];
  readonly kid: string | undefined;
  readonly reason: KeyRejectionReason;
}

const rejections: Record<string, RejectionCase> = {
  'an RSA key without n': {
    key: () => ({ ...withoutMember(rsa.publicJwk, 'n'), kid: 'rsa-no-n' }),
    kid: 'rsa-no-n',
    reason: 'not_importable',
  },
  'an EC P-256 key whose point is off the curve (y changed)': {
    key: () => ({ ...withFlippedByte(ec.publicJwk, 'y'), kid: 'ec-off-curve' }),
    kid: 'ec-off-curve',
    reason: 'not_importable',
  },
  'an Ed25519 key whose x is 16 bytes': {
    key: () => ({ ...ed.publicJwk, x: base64url.encode(new Uint8Array(16).fill(7)), kid: 'ed-short' }),
    kid: 'ed-short',
    reason: 'not_importable',
  },
  'an RSA key of 1024 bits': { key: shortRsaKey, kid: 'rsa-1024', reason: 'key_too_short' },
  // Refused from its members alone, before any import: no real key of this size needs to exist.
  'an RSA key of 16384 bits (over max_rsa_key_bits, 4096 by default)': {
    key: () => ({ ...rsa.publicJwk, n: base64url.encode(new Uint8Array(2048).fill(0xc5)), kid: 'rsa-16k' }),
    kid: 'rsa-16k',
    reason: 'key_too_long',
  },
  'an RSA key of 4104 bits': {
    key: () => ({ ...rsa.publicJwk, n: base64url.encode(new Uint8Array(513).fill(0xc5)), kid: 'rsa-4104' }),
    kid: 'rsa-4104',
    reason: 'key_too_long',
  },
  'an RSA key with exponent 3 (under 65537)': {
    key: () => ({ ...rsa.publicJwk, e: base64url.encode(Uint8Array.of(3)), kid: 'rsa-e3' }),
    kid: 'rsa-e3',
    reason: 'exponent_invalid',
  },
  'an RSA key with an even exponent': {
    key: () => ({ ...rsa.publicJwk, e: base64url.encode(Uint8Array.of(1, 0, 2)), kid: 'rsa-even' }),
    kid: 'rsa-even',
    reason: 'exponent_invalid',
  },
  'an RSA key with the exponent 2^32 + 1': {
    key: () => ({ ...rsa.publicJwk, e: base64url.encode(Uint8Array.of(1, 0, 0, 0, 1)), kid: 'rsa-big-e' }),
    kid: 'rsa-big-e',
    reason: 'exponent_invalid',
  },
  'an RSA key with a 3072-byte exponent': {
    key: () => ({ ...rsa.publicJwk, e: base64url.encode(new Uint8Array(384).fill(0xff)), kid: 'rsa-huge-e' }),
    kid: 'rsa-huge-e',
    reason: 'exponent_invalid',
  },
  'a private RSA key (with d, p, q...)': {
    key: async () => ({ ...(await exportJWK(rsa.privateKey)), kid: 'rsa-private' }),
    kid: 'rsa-private',
    reason: 'private_key',
  },
  'a public key that also carries d': {
    key: () => ({ ...ec.publicJwk, d: 'AAAA', kid: 'ec-with-d' }),
    kid: 'ec-with-d',
    reason: 'private_key',
  },
  'a symmetric key (k)': {
    key: () => ({ kty: 'oct', k: 'c2VjcmV0', kid: 'oct-1' }),
    kid: 'oct-1',
    reason: 'private_key',
  },
  'a key for encryption (use: enc)': {
    key: () => ({ ...rsa.publicJwk, use: 'enc', kid: 'rsa-enc' }),
    kid: 'rsa-enc',
    reason: 'not_a_signing_key',
  },
  'a key for encryption (key_ops: [encrypt])': {
    key: () => ({ ...withoutMember(rsa.publicJwk, 'use'), key_ops: ['encrypt'], kid: 'rsa-ops' }),
    kid: 'rsa-ops',
    reason: 'not_a_signing_key',
  },
  'a key whose alg is not in the allowed list (RS384, allowed RS256)': {
    key: () => ({ ...rsa.publicJwk, alg: 'RS384', kid: 'rsa-384' }),
    algorithms: ['RS256'],
    kid: 'rsa-384',
    reason: 'algorithm_not_allowed',
  },
  'an EC key when only RS256 is allowed': {
    key: () => ec.publicJwk,
    algorithms: ['RS256'],
    kid: 'ec-1',
    reason: 'algorithm_not_allowed',
  },
  'a key of a type no JWS algorithm uses (kty: "XYZ")': {
    key: () => ({ kty: 'XYZ', kid: 'odd-1' }),
    kid: 'odd-1',
    reason: 'algorithm_not_allowed',
  },
  'a string': { key: () => 'rsa-1', kid: undefined, reason: 'not_an_object' },
  null: { key: () => null, kid: undefined, reason: 'not_an_object' },
  'an array': { key: () => [rsa.publicJwk], kid: undefined, reason: 'not_an_object' },
  'a number': { key: () => 42, kid: undefined, reason: 'not_an_object' },
};

describe('checkKeySet: keys it leaves out, and why', () => {
  it.each(Object.entries(rejections))('leaves out %s', async (_case, { key, algorithms, kid, reason }) => {
    const checked = await checkKeySet([await key()], algorithms ?? ALL_KINDS);

    expect(checked).toEqual({ usable: [], rejected: [{ kid, reason }] });
  });

  it('has a case above for every rejection reason', () => {
    const covered = new Set(Object.values(rejections).map((entry) => entry.reason));

    expect([...covered].sort()).toEqual([...KEY_REJECTION_REASONS].sort());
  });
});

describe('checkKeySet: keys it keeps', () => {
  it('accepts valid RSA, EC P-256 and Ed25519 public keys, as published and in order', async () => {
    const keys = [rsa.publicJwk, ec.publicJwk, ed.publicJwk];

    expect(await checkKeySet(keys, ALL_KINDS)).toEqual({ usable: keys, rejected: [] });
  });

  it('accepts a key without alg or use, and one whose key_ops include verify', async () => {
    const bare = withoutMember(withoutMember(rsa.publicJwk, 'alg'), 'use');
    const verifying = { ...ec.publicJwk, key_ops: ['verify'] };

    expect(await checkKeySet([bare, verifying], ALL_KINDS)).toEqual({
      usable: [bare, verifying],
      rejected: [],
    });
  });

  it('takes RSA moduli up to the largest allowed (max_rsa_key_bits): a 3072-bit key under 3072, not under 2048', async () => {
    // A made-up modulus (generating a real one takes a while): importable, which is all a key set check asks.
    const jwk = {
      kty: 'RSA',
      n: base64url.encode(new Uint8Array(384).fill(0xc5)),
      e: 'AQAB',
      kid: 'rsa-3072',
    };

    expect(await checkKeySet([jwk], ['RS256'], 3072)).toEqual({ usable: [jwk], rejected: [] });
    expect(await checkKeySet([jwk], ['RS256'], 2048)).toEqual({
      usable: [],
      rejected: [{ kid: 'rsa-3072', reason: 'key_too_long' }],
    });
  });

  it('keeps the good keys of a set that also holds broken ones', async () => {
    const broken = withFlippedByte(ec.publicJwk, 'y');

    expect(await checkKeySet([rsa.publicJwk, broken, ed.publicJwk, 'junk'], ALL_KINDS)).toEqual({
      usable: [rsa.publicJwk, ed.publicJwk],
      rejected: [
        { kid: 'ec-1', reason: 'not_importable' },
        { kid: undefined, reason: 'not_an_object' },
      ],
    });
  });

  it('reports a kid cut to 128 characters, and no kid when it is not a string', async () => {
    const long = 'k'.repeat(1000);
    const checked = await checkKeySet(
      [
        { ...rsa.publicJwk, use: 'enc', kid: long },
        { ...rsa.publicJwk, use: 'enc', kid: 7 },
      ],
      ALL_KINDS,
    );

    expect(checked.rejected).toEqual([
      { kid: 'k'.repeat(128), reason: 'not_a_signing_key' },
      { kid: undefined, reason: 'not_a_signing_key' },
    ]);
  });
});

describe('verifyAccessToken with a key set that holds a broken key', () => {
  let policy: CompiledPolicy;
  let clock: ManualClock;
  let fetch: FakeKeySetFetch;
  let rejected: KeyRejectionEvent[];
  let keys: IssuerKeys;
  let context: VerifyContext;

  beforeAll(() => {
    const text = demoPolicyText([], {
      issuerSettings: { jwks_cache_ttl: 60, jwks_refresh_cooldown: 10 },
    }).replace('algorithms: [RS256]', 'algorithms: [RS256, ES256]');
    policy = compilePolicy(text, 'policy.yaml');
  });

  beforeEach(() => {
    clock = createManualClock();
    fetch = createKeySetFetch([]);
    rejected = [];
    keys = new IssuerKeys({
      issuer: policy.issuers.get(DEMO_ISSUER)!,
      fetchKeySet: fetch.fetch,
      now: clock.now,
      random: () => 0,
      waitAtMost: recordWaits('until_done').waitAtMost,
      onKeyRejected: (event) => rejected.push(event),
    });
    context = { policy, keysFor: () => keys, now: clock.now };
  });

  /** A token signed with `key`'s private key, its header naming `kid`. */
  function sign(key: TestKey, kid = key.kid): Promise<string> {
    return signTestToken(
      key,
      { issuer: DEMO_ISSUER, audience: DEMO_AUDIENCE },
      { now: clock.seconds(), header: { kid } },
    );
  }

  it.each([
    [
      'an EC key off its curve',
      () => ({ signer: ec, broken: { ...withFlippedByte(ec.publicJwk, 'y'), kid: 'broken' } }),
    ],
    [
      'an RSA key without n',
      () => ({ signer: rsa, broken: { ...withoutMember(rsa.publicJwk, 'n'), kid: 'broken' } }),
    ],
  ])(
    'refuses a token naming %s as signed with an unknown key, never throwing; the good key still verifies',
    async (_case, make) => {
      const { signer, broken } = make();
      const good = rsa === signer ? ec : rsa;
      fetch.publish([good.publicJwk, broken]);

      const named = verifyAccessToken(await sign(signer, 'broken'), context);

      await expect(named).resolves.toMatchObject({ kind: 'invalid', reason: 'token_key_unknown' });
      expect(await verifyAccessToken(await sign(good), context)).toMatchObject({ kind: 'verified' });
      expect(rejected).toEqual([{ issuer: DEMO_ISSUER, kid: 'broken', reason: 'not_importable' }]);
    },
  );

  it('reports a broken key once per distinct set, however often the same set is fetched again', async () => {
    const broken = { ...withFlippedByte(ec.publicJwk, 'y'), kid: 'broken' };
    fetch.publish([rsa.publicJwk, broken]);
    const named = await sign(ec, 'broken');
    await keys.prefetch();

    for (let refresh = 0; refresh < 3; refresh += 1) {
      clock.advance(45_000); // the background refresh: 75 % of jwks_cache_ttl
      keys.refreshIfDue();
      await settle();
    }
    clock.advance(10_000); // the unknown-kid cooldown
    expect(await verifyAccessToken(named, context)).toMatchObject({ reason: 'token_key_unknown' });
    expect(fetch.calls).toBe(5); // the first fetch, three refreshes and one for the unknown kid
    expect(rejected).toHaveLength(1);

    fetch.publish([rsa.publicJwk, broken, ec.publicJwk]); // another set, the broken key still in it
    clock.advance(45_000);
    keys.refreshIfDue();
    await settle();

    expect(rejected).toEqual([
      { issuer: DEMO_ISSUER, kid: 'broken', reason: 'not_importable' },
      { issuer: DEMO_ISSUER, kid: 'broken', reason: 'not_importable' },
    ]);
    expect(await verifyAccessToken(await sign(rsa), context)).toMatchObject({ kind: 'verified' });
  });
});
