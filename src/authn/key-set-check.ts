import { base64url, importJWK, type JWK } from 'jose';

/** Why a key of a fetched set is not used. Stable codes: logged and counted (a bounded label). */
export type KeyRejectionReason =
  | 'not_an_object' // the entry is not a JSON object
  | 'not_a_signing_key' // `use` is not "sig", or `key_ops` lacks "verify" (RFC 7517 sections 4.2, 4.3)
  | 'private_key' // it carries private or symmetric key material, which a key set must never publish
  | 'algorithm_not_allowed' // its `alg`, or every algorithm its type could serve, is off the issuer's list
  | 'key_too_short' // an RSA modulus under 2048 bits (RFC 7518 section 3.3)
  | 'not_importable'; // the runtime refuses it (a missing or malformed member, a point off its curve...)

export const KEY_REJECTION_REASONS: readonly KeyRejectionReason[] = [
  'not_an_object',
  'not_a_signing_key',
  'private_key',
  'algorithm_not_allowed',
  'key_too_short',
  'not_importable',
];

/** One key left out of a set, for logs: its `kid` (cut to a loggable length) and why. */
export interface RejectedKey {
  /** The key's `kid`, or undefined when it has none (or not a string). */
  readonly kid: string | undefined;
  readonly reason: KeyRejectionReason;
}

/** A key set split into the keys verification may use and those it may not. */
export interface CheckedKeySet {
  readonly usable: readonly JWK[];
  readonly rejected: readonly RejectedKey[];
}

const MAX_LOGGED_KID = 128; // characters
const MIN_RSA_MODULUS_BITS = 2048;
/** JWK members of private or symmetric keys (RFC 7518 sections 6.2.2, 6.3.2, 6.4; RFC 8037 section 2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The algorithms (JWS `alg`, RFC 7518 section 3.1, RFC 8037, RFC 9864) a key of this type and curve can serve. */
function algorithmsFor(jwk: Record<string, unknown>): readonly string[] {
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
 * Checks every key of a fetched set before any token relies on it: the keys are imported here, once per
 * fetch, so that a key the runtime cannot use is left out (and reported) instead of failing each request
 * that names it. A token naming a rejected key is then refused as signed with an unknown key.
 *
 * @param algorithms the issuer's allowed JWS algorithms
 */
export async function checkKeySet(
  keys: readonly unknown[],
  algorithms: readonly string[],
): Promise<CheckedKeySet> {
  const usable: JWK[] = [];
  const rejected: RejectedKey[] = [];
  for (const key of keys) {
    const reason = await rejectionOf(key, algorithms);
    if (reason === undefined) usable.push(key as JWK);
    else rejected.push({ kid: kidOf(key), reason });
  }
  return { usable, rejected };
}

function kidOf(key: unknown): string | undefined {
  const kid = typeof key === 'object' && key !== null ? (key as { kid?: unknown }).kid : undefined;
  return typeof kid === 'string' ? kid.slice(0, MAX_LOGGED_KID) : undefined;
}

async function rejectionOf(
  key: unknown,
  allowed: readonly string[],
): Promise<KeyRejectionReason | undefined> {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) return 'not_an_object';
  const jwk = key as Record<string, unknown>;
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') return 'not_a_signing_key';
  const ops = jwk['key_ops'];
  if (ops !== undefined && !(Array.isArray(ops) && ops.includes('verify'))) return 'not_a_signing_key';
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) return 'private_key';
  const fitting = algorithmsFor(jwk).filter((alg) => allowed.includes(alg));
  const declared = jwk['alg'];
  const alg = declared === undefined ? fitting[0] : fitting.find((candidate) => candidate === declared);
  if (alg === undefined) return 'algorithm_not_allowed';
  if (jwk['kty'] === 'RSA' && typeof jwk['n'] === 'string' && modulusBits(jwk['n']) < MIN_RSA_MODULUS_BITS) {
    return 'key_too_short';
  }
  try {
    await importJWK(jwk as JWK, alg);
    return undefined;
  } catch {
    return 'not_importable';
  }
}

/** Bits of an RSA modulus given as base64url (RFC 7518 section 6.3.1.1), leading zero bytes not counted. */
function modulusBits(n: string): number {
  let bytes: Uint8Array;
  try {
    bytes = base64url.decode(n);
  } catch {
    return Number.NaN; // malformed: left to the import, which refuses it
  }
  let start = 0;
  while (start < bytes.length && bytes[start] === 0) start += 1;
  if (start === bytes.length) return 0;
  return (bytes.length - start - 1) * 8 + (32 - Math.clz32(bytes[start]!));
}
