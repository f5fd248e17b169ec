import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Bytes of the issue time (seconds, big-endian) and of the truncated HMAC-SHA256 tag. */
const TIME_BYTES = 8;
const TAG_BYTES = 16;
/** A nonce issued up to this many seconds "in the future" (another replica's clock) is still accepted. */
const FUTURE_TOLERANCE_SECONDS = 5;
/** 24 bytes in base64url, unpadded. */
const NONCE_SHAPE = /^[A-Za-z0-9_-]{32}$/;
/** The least key length accepted, in bytes (an HMAC-SHA256 key of 256 bits). */
export const MIN_NONCE_KEY_BYTES = 32;

/**
 * Server-provided DPoP nonces (RFC 9449 section 9), stateless: a nonce is its issue time and an HMAC-SHA256
 * tag over that time and the service's name, so any process holding the key (every worker, every replica
 * given the same key file) accepts it until it is `nonce_lifetime` old, and nonces change every second.
 * Nothing is stored per nonce.
 */
export class DpopNonces {
  private readonly key: Buffer;

  /** @throws RangeError for a key shorter than 32 bytes. */
  constructor(key: Uint8Array) {
    if (key.length < MIN_NONCE_KEY_BYTES) {
      throw new RangeError(`a DPoP nonce key needs at least ${MIN_NONCE_KEY_BYTES} bytes`);
    }
    this.key = Buffer.from(key);
  }

  /** A process-local key: nonces then hold for this process and the workers it shares the key with. */
  static withRandomKey(): DpopNonces {
    return new DpopNonces(randomBytes(MIN_NONCE_KEY_BYTES));
  }

  /** A nonce for `service`, issued now. */
  issue(service: string, nowMs: number): string {
    const time = Buffer.alloc(TIME_BYTES);
    time.writeBigUInt64BE(BigInt(Math.floor(nowMs / 1000)));
    return Buffer.concat([time, this.tag(service, time)]).toString('base64url');
  }

  /** Whether `nonce` was issued for `service` by a holder of the key at most `lifetimeSeconds` ago. */
  accepts(nonce: string, service: string, nowMs: number, lifetimeSeconds: number): boolean {
    // Exactly the 32 characters issue() writes: base64url decoding would ignore a trailing extra one.
    if (!NONCE_SHAPE.test(nonce)) return false;
    const bytes = Buffer.from(nonce, 'base64url');
    const time = bytes.subarray(0, TIME_BYTES);
    if (!timingSafeEqual(bytes.subarray(TIME_BYTES), this.tag(service, time))) return false;
    const age = Math.floor(nowMs / 1000) - Number(time.readBigUInt64BE());
    return age <= lifetimeSeconds && age >= -FUTURE_TOLERANCE_SECONDS;
  }

  private tag(service: string, time: Buffer): Buffer {
    return createHmac('sha256', this.key)
      .update('authz dpop nonce\0')
      .update(service)
      .update('\0')
      .update(time)
      .digest()
      .subarray(0, TAG_BYTES);
  }
}
