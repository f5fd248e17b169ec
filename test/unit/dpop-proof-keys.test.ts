import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { DpopProofKeys } from '../../src/authn/dpop-proof-keys.js';

describe('DpopProofKeys: proof keys imported once per key and algorithm', () => {
  it('imports a public key once, and gives the same key and its RFC 7638 thumbprint again', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const keys = new DpopProofKeys();

    const first = await keys.resolve(jwk, 'ES256');
    const again = await keys.resolve({ ...jwk }, 'ES256');

    expect(first).toMatchObject({ kind: 'key', thumbprint: await calculateJwkThumbprint(jwk, 'sha256') });
    expect(again.kind === 'key' && first.kind === 'key' && again.key === first.key).toBe(true);
    expect(first.kind === 'key' && first.key.type).toBe('public');
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
    expect((await keys.resolve(jwk, 'ES256')).kind).toBe('key');

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
