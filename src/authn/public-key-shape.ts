import { base64url } from 'jose';

/**
 * Why a public JWK is refused before anything costly is done with it (importing it, verifying with it).
 * Stable codes: the key set rejection reasons and the DPoP proof refusals build on them.
 */
export type KeyShapeProblem =
  | 'algorithm_mismatch' // its type or curve cannot serve the algorithm (ES256 is P-256 only, RFC 7518 3.4)
  | 'key_too_short' // an RSA modulus under 2048 bits (RFC 7518 section 3.3)
  | 'key_too_long' // an RSA modulus over the policy's `max_rsa_key_bits`
  | 'exponent_invalid' // an RSA public exponent that is even, under 65537 or over 2^32 - 1
  | 'malformed'; // a member missing or not base64url of the right length

/** RSA key sizes and exponents accepted, with units. */
export const RSA_KEY_LIMITS = Object.freeze({
  minModulusBits: 2048, // RFC 7518 section 3.3
  defaultMaxModulusBits: 4096, // the largest modulus identity providers publish; `max_rsa_key_bits`
  highestMaxModulusBits: 8192, // what `max_rsa_key_bits` may be raised to
  // FIPS 186-5 section A.1.1 asks for 2^16 < e; past 2^32 an exponent only costs CPU (each verification
  // is a modular exponentiation by e): 65537 is what every library makes.
  minExponent: 65537,
  maxExponent: 2 ** 32 - 1,
});

/** Coordinate length in bytes of each curve's points (RFC 7518 section 6.2.1.2, RFC 8037 section 2). */
const CURVE_BYTES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66, Ed25519: 32 };

/** The algorithms (JWS `alg`, RFC 7518 section 3.1, RFC 8037, RFC 9864) a key of this type and curve can serve. */
export function algorithmsFor(jwk: Readonly<Record<string, unknown>>): readonly string[] {
  switch (jwk['kty']) {
    case 'RSA':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'EC':
      return jwk['crv'] === 'P-256'
        ? ['ES256']
        : jwk['crv'] === 'P-384'
          ? ['ES384']
          : jwk['crv'] === 'P-521'
            ? ['ES512']
            : [];
    case 'OKP':
      return jwk['crv'] === 'Ed25519' ? ['EdDSA', 'Ed25519'] : [];
    default:
      return [];
  }
}

/**
 * What is wrong with a public key for `alg`, judged from its members alone (no import, no arithmetic): the
 * key type and curve must serve the algorithm, points must have their curve's length, and an RSA modulus
 * must be 2048 to `maxModulusBits` bits with an odd exponent from 65537 to 2^32 - 1. The work an unproven
 * key can cost is bounded here, before it is imported: a 16384-bit modulus or a huge exponent would cost
 * milliseconds of CPU per signature check.
 */
export function keyShapeProblem(
  jwk: Readonly<Record<string, unknown>>,
  alg: string,
  maxModulusBits: number,
): KeyShapeProblem | undefined {
  if (!algorithmsFor(jwk).includes(alg)) return 'algorithm_mismatch';
  if (jwk['kty'] === 'RSA') return rsaProblem(jwk['n'], jwk['e'], maxModulusBits);
  const length = CURVE_BYTES[jwk['crv'] as string];
  const coordinates = jwk['kty'] === 'EC' ? [jwk['x'], jwk['y']] : [jwk['x']];
  return coordinates.every((coordinate) => decodedLength(coordinate, length) === length)
    ? undefined
    : 'malformed';
}

function rsaProblem(n: unknown, e: unknown, maxModulusBits: number): KeyShapeProblem | undefined {
  // Judged by its length before it is decoded: a modulus far too long is not even read.
  if (typeof n !== 'string' || typeof e !== 'string') return 'malformed';
  if (n.length > Math.ceil((maxModulusBits / 8 + 1) / 3) * 4) return 'key_too_long';
  const bits = modulusBits(n);
  if (Number.isNaN(bits)) return 'malformed';
  if (bits < RSA_KEY_LIMITS.minModulusBits) return 'key_too_short';
  if (bits > maxModulusBits) return 'key_too_long';
  const exponent = exponentValue(e);
  if (
    exponent === undefined ||
    exponent % 2 === 0 ||
    exponent < RSA_KEY_LIMITS.minExponent ||
    exponent > RSA_KEY_LIMITS.maxExponent
  ) {
    return 'exponent_invalid';
  }
  return undefined;
}

/** Bits of an RSA modulus given as base64url (RFC 7518 section 6.3.1.1), leading zero bytes not counted. */
export function modulusBits(n: string): number {
  const bytes = decode(n);
  if (bytes === undefined) return Number.NaN;
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  if (start === bytes.length) return 0;
  return (bytes.length - start - 1) * 8 + (32 - Math.clz32(bytes[start]!));
}

/** The exponent's value when it fits in 8 bytes of base64url (anything longer is refused unread). */
function exponentValue(e: string): number | undefined {
  if (e.length > 11) return undefined; // over 8 bytes: far past 2^32
  const bytes = decode(e);
  if (bytes === undefined || bytes.length === 0) return undefined;
  return bytes.reduce((value, byte) => value * 256 + byte, 0);
}

function decodedLength(value: unknown, expected: number | undefined): number | undefined {
  if (typeof value !== 'string' || expected === undefined || value.length > Math.ceil(expected / 3) * 4) {
    return undefined;
  }
  return decode(value)?.length;
}

function decode(value: string): Uint8Array | undefined {
  try {
    return base64url.decode(value);
  } catch {
    return undefined;
  }
}
