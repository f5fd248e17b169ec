import { describe, expect, it } from 'vitest';
import { DpopNonces, MIN_NONCE_KEY_BYTES } from '../../../src/authn/dpop-nonces.js';

// Server nonces (RFC 9449 section 9): the issue second and an HMAC-SHA256 tag over it and the service name,
// accepted by any holder of the key for nonce_lifetime (docs/sender-constraints.md, "Replays, workers and
// replicas").

const T0 = Date.UTC(2030, 0, 1);
const SECOND = 1000;
const LIFETIME = 60;
const KEY = Buffer.alloc(32, 7);

/** Flips the character at `index` of a base64url text to another base64url character. */
function flip(text: string, index: number): string {
  const char = text[index] === 'A' ? 'B' : 'A';
  return `${text.slice(0, index)}${char}${text.slice(index + 1)}`;
}

describe('DpopNonces', () => {
  it('needs a key of at least 32 bytes', () => {
    expect(MIN_NONCE_KEY_BYTES).toBe(32);
    expect(() => new DpopNonces(Buffer.alloc(31))).toThrow(RangeError);
    expect(() => new DpopNonces(new Uint8Array())).toThrow(/at least 32 bytes/);
    expect(() => new DpopNonces(Buffer.alloc(32))).not.toThrow();
    expect(() => new DpopNonces(Buffer.alloc(64))).not.toThrow();
  });

  it('issues a base64url nonce of 24 bytes (the time and a 16-byte tag)', () => {
    const nonce = new DpopNonces(KEY).issue('bank', T0);
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(nonce, 'base64url').readBigUInt64BE(0)).toBe(BigInt(T0 / 1000));
  });

  it('issues the same nonce within a second and another one the next second', () => {
    const nonces = new DpopNonces(KEY);
    expect(nonces.issue('bank', T0)).toBe(nonces.issue('bank', T0 + 999));
    expect(nonces.issue('bank', T0)).not.toBe(nonces.issue('bank', T0 + SECOND));
  });

  it('accepts a nonce it issued, for the service it was issued for', () => {
    const nonces = new DpopNonces(KEY);
    expect(nonces.accepts(nonces.issue('bank', T0), 'bank', T0, LIFETIME)).toBe(true);
  });

  it('accepts a nonce issued by another holder of the same key (a worker, a replica)', () => {
    const nonce = new DpopNonces(Buffer.from(KEY)).issue('bank', T0);
    expect(new DpopNonces(KEY).accepts(nonce, 'bank', T0 + 5 * SECOND, LIFETIME)).toBe(true);
  });

  it('refuses a nonce issued for another service', () => {
    const nonces = new DpopNonces(KEY);
    expect(nonces.accepts(nonces.issue('bank', T0), 'shop', T0, LIFETIME)).toBe(false);
    expect(nonces.accepts(nonces.issue('bank', T0), 'bank2', T0, LIFETIME)).toBe(false);
    expect(nonces.accepts(nonces.issue('bank', T0), 'Bank', T0, LIFETIME)).toBe(false);
  });

  it('refuses a nonce made with another key', () => {
    const nonce = new DpopNonces(Buffer.alloc(32, 8)).issue('bank', T0);
    expect(new DpopNonces(KEY).accepts(nonce, 'bank', T0, LIFETIME)).toBe(false);
  });

  it('makes a random key per instance with withRandomKey', () => {
    const one = DpopNonces.withRandomKey();
    const other = DpopNonces.withRandomKey();
    expect(one.accepts(one.issue('bank', T0), 'bank', T0, LIFETIME)).toBe(true);
    expect(other.accepts(one.issue('bank', T0), 'bank', T0, LIFETIME)).toBe(false);
  });

  it.each([
    ['just issued', 0, true],
    ['exactly nonce_lifetime old', LIFETIME, true],
    ['nonce_lifetime + 1 s old', LIFETIME + 1, false],
    ['a day old', 86_400, false],
    ['issued 5 s ahead (another replica a little ahead)', -5, true],
    ['issued 6 s ahead', -6, false],
    ['issued a day ahead', -86_400, false],
  ])('a nonce %s: accepted %s', (_case, ageSeconds, accepted) => {
    const nonces = new DpopNonces(KEY);
    const nonce = nonces.issue('bank', T0 - ageSeconds * SECOND);
    expect(nonces.accepts(nonce, 'bank', T0, LIFETIME)).toBe(accepted);
  });

  it('uses the lifetime it is given', () => {
    const nonces = new DpopNonces(KEY);
    const nonce = nonces.issue('bank', T0);
    expect(nonces.accepts(nonce, 'bank', T0 + 10 * SECOND, 10)).toBe(true);
    expect(nonces.accepts(nonce, 'bank', T0 + 11 * SECOND, 10)).toBe(false);
  });

  it.each([
    ['an empty string', () => ''],
    ['garbage', () => 'not-a-nonce'],
    ['base64 with padding', (nonce: string) => `${nonce}=`],
    ['a plus sign', (nonce: string) => `${nonce.slice(0, -1)}+`],
    ['a slash', (nonce: string) => `${nonce.slice(0, -1)}/`],
    ['a space', (nonce: string) => ` ${nonce}`],
    ['a nonce cut short', (nonce: string) => nonce.slice(0, -1)],
    ['a nonce cut to its time', (nonce: string) => nonce.slice(0, 11)],
    ['a nonce doubled', (nonce: string) => nonce + nonce],
    ['a nonce far too long', () => 'A'.repeat(65)],
    ['another time under the same tag', (nonce: string) => flip(nonce, 9)],
    ['a tampered tag', (nonce: string) => flip(nonce, 20)],
    ['the last tag character changed', (nonce: string) => flip(nonce, 31)],
    ['four bytes more', (nonce: string) => `${nonce}AAAA`],
  ])('refuses %s', (_case, make) => {
    const nonces = new DpopNonces(KEY);
    expect(nonces.accepts(make(nonces.issue('bank', T0)), 'bank', T0, LIFETIME)).toBe(false);
  });

  // A nonce is 24 bytes: 32 base64url characters exactly. Node's base64url decoder ignores a trailing
  // character that makes no whole byte, so today `nonce + 'A'` decodes to the same 24 bytes and is accepted:
  // the server accepts texts it never issued.
  it.each([
    ['a letter more', 'A'],
    ['a dash more', '-'],
    ['a lower-case letter more', 'z'],
  ])('refuses an issued nonce with %s', (_case, extra) => {
    const nonces = new DpopNonces(KEY);
    expect(nonces.accepts(nonces.issue('bank', T0) + extra, 'bank', T0, LIFETIME)).toBe(false);
  });
});
