import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { DPOP_PROOF_KEYS_LIMITS, DpopProofKeys } from '../../../src/authn/dpop-proof-keys.js';

/**
 * An RSA public JWK with a modulus of `bytes` bytes, its top bit set, and exponent 65537: not a real key (no
 * one knows its factors), but importable, which is all a verifier does with a public key before using it.
 */
function modulusOfBytes(bytes: number) {
  return { kty: 'RSA', n: base64url.encode(new Uint8Array(bytes).fill(0xc5)), e: 'AQAB' };
}

describe('DpopProofKeys: proof keys imported once per key and algorithm', () => {
  it('imports a public key once, and gives the same key and its RFC 7638 thumbprint again', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();

    const first = await keys.resolve(jwk, 'ES256');
    if (first.kind === 'key') first.keep(); // its signature verified
    const again = await keys.resolve({ ...jwk }, 'ES256');

    expect(first).toMatchObject({ kind: 'key', thumbprint: await calculateJwkThumbprint(jwk, 'sha256') });
    expect(again.kind === 'key' && first.kind === 'key' && again.key === first.key).toBe(true);
    expect(first.kind === 'key' && first.key.type).toBe('public');
  });

  it('remembers a key only once a signature made with it has verified (keep), not when it is merely named', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();

    const unproven = await keys.resolve(jwk, 'ES256');
    expect(unproven.kind).toBe('key');
    expect(keys.size).toBe(0);
    const second = await keys.resolve(jwk, 'ES256');
    expect(second.kind === 'key' && unproven.kind === 'key' && second.key !== unproven.key).toBe(true);

    if (second.kind === 'key') second.keep();
    expect(keys.size).toBe(1);
  });

  it('bounds what it remembers in bytes as well as in keys: 4096-bit keys count four times what P-256 keys do', async () => {
    const keys = new DpopProofKeys();
    const { publicKey: ec } = await generateKeyPair('ES256');
    for (const [jwk, alg] of [
      [await exportJWK(ec), 'ES256'],
      [modulusOfBytes(512), 'RS256'], // 4096 bits: made up, as generating one takes seconds
    ] as const) {
      const resolved = await keys.resolve(jwk, alg);
      if (resolved.kind === 'key') resolved.keep();
    }
    expect(keys.size).toBe(2);
    // P-256: x and y (86 characters); RSA-4096: n and e (687 characters); 256 bytes of overhead each.
    expect(keys.bytes).toBe(86 + 256 + 687 + 256);
    expect(DPOP_PROOF_KEYS_LIMITS.maxBytes).toBe(8 * 1024 * 1024);
  });

  it.each([
    [
      'a 16384-bit RSA modulus',
      'RS256',
      () => ({ kty: 'RSA', n: base64url.encode(new Uint8Array(2048).fill(0xc5)), e: 'AQAB' }),
      "the RSA modulus of the DPoP proof's jwk is larger than this service accepts",
    ],
    [
      'a 4096-bit RSA modulus with an exponent of 384 bytes',
      'RS256',
      () => ({
        kty: 'RSA',
        n: base64url.encode(new Uint8Array(512).fill(0xc5)),
        e: base64url.encode(new Uint8Array(384).fill(0xff)),
      }),
      "the RSA exponent of the DPoP proof's jwk is not an odd number from 65537 to 2^32 - 1",
    ],
    [
      'a 1024-bit RSA modulus',
      'PS256',
      () => ({ kty: 'RSA', n: base64url.encode(new Uint8Array(128).fill(0xc5)), e: 'AQAB' }),
      "the RSA modulus of the DPoP proof's jwk is under 2048 bits",
    ],
    [
      'a P-384 key for ES256',
      'ES256',
      () => ({ kty: 'EC', crv: 'P-384', x: 'A'.repeat(64), y: 'A'.repeat(64) }),
      'the jwk of the DPoP proof cannot serve the algorithm of its header',
    ],
    [
      'an RSA key for ES256',
      'ES256',
      () => ({ kty: 'RSA', n: base64url.encode(new Uint8Array(256).fill(0xc5)), e: 'AQAB' }),
      'the jwk of the DPoP proof cannot serve the algorithm of its header',
    ],
    [
      'a P-256 point with 64-byte coordinates',
      'ES256',
      () => ({ kty: 'EC', crv: 'P-256', x: 'A'.repeat(86), y: 'A'.repeat(86) }),
      'the jwk of the DPoP proof is not a usable public key',
    ],
  ])('refuses %s from its members alone, before importing it', async (_case, alg, jwk, description) => {
    const keys = new DpopProofKeys();
    expect(await keys.resolve(jwk(), alg)).toEqual({ kind: 'unusable', description });
  });

  it('takes an RSA modulus up to the largest allowed (max_rsa_key_bits)', async () => {
    const jwk = modulusOfBytes(384); // 3072 bits
    const keys = new DpopProofKeys();
    expect((await keys.resolve(jwk, 'RS256', 3072)).kind).toBe('key');
    expect(await keys.resolve(jwk, 'RS256', 2048)).toMatchObject({ kind: 'unusable' });
  });

  it('keeps keys apart by algorithm: the same RSA key for RS256 and PS256 is two imports', async () => {
    const { publicKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();

    const rs = await keys.resolve(jwk, 'RS256');
    const ps = await keys.resolve(jwk, 'PS256');

    expect(rs.kind === 'key' && ps.kind === 'key' && rs.key !== ps.key).toBe(true);
    expect(rs.kind === 'key' && rs.key.algorithm.name).toBe('RSASSA-PKCS1-v1_5');
    expect(ps.kind === 'key' && ps.key.algorithm.name).toBe('RSA-PSS');
  });

  it.each([
    ['use other than sig', { use: 'enc' }, 'is not a signing key'],
    ['an alg member naming another algorithm', { alg: 'ES384' }, 'is for another algorithm'],
    ['key_ops without verify', { key_ops: ['sign'] }, 'may not verify signatures'],
    ['key_ops that is not a list', { key_ops: 'verify' }, 'may not verify signatures'],
  ])('refuses a jwk with %s, even once the key is known', async (_case, extra, description) => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();
    const known = await keys.resolve(jwk, 'ES256');
    expect(known.kind).toBe('key');
    if (known.kind === 'key') known.keep();

    expect(await keys.resolve({ ...jwk, ...extra }, 'ES256')).toEqual({
      kind: 'unusable',
      description: `the jwk of the DPoP proof ${description}`,
    });
  });

  it('refuses a key that cannot be imported for the algorithm (a P-256 key for ES384, a point off the curve)', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();

    expect(await keys.resolve(jwk, 'ES384')).toMatchObject({ kind: 'unusable' });
    expect(await keys.resolve({ ...jwk, y: jwk.x }, 'ES256')).toMatchObject({ kind: 'unusable' });
    expect(await keys.resolve({ kty: 'EC', crv: 'P-256' }, 'ES256')).toMatchObject({ kind: 'unusable' });
  });
});
