import { importJWK, type JWK } from 'jose';
import { algorithmsFor, keyShapeProblem, RSA_KEY_LIMITS } from './public-key-shape.js';

/** Why a key of a fetched set is not used. Stable codes: logged and counted (a bounded label). */
export type KeyRejectionReason =
  | 'not_an_object' // the entry is not a JSON object
  | 'not_a_signing_key' // `use` is not "sig", or `key_ops` lacks "verify" (RFC 7517 sections 4.2, 4.3)
  | 'private_key' // it carries private or symmetric key material, which a key set must never publish
  | 'algorithm_not_allowed' // its `alg`, or every algorithm its type could serve, is off the issuer's list
  | 'key_too_short' // an RSA modulus under 2048 bits (RFC 7518 section 3.3)
  | 'key_too_long' // an RSA modulus over `max_rsa_key_bits` (4096 by default)
  | 'exponent_invalid' // an RSA exponent that is even, under 65537 or over 2^32 - 1
  | 'not_importable'; // the runtime refuses it (a missing or malformed member, a point off its curve...)

export const KEY_REJECTION_REASONS: readonly KeyRejectionReason[] = [
  'not_an_object',
  'not_a_signing_key',
  'private_key',
  'algorithm_not_allowed',
  'key_too_short',
  'key_too_long',
  'exponent_invalid',
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
/** JWK members of private or symmetric keys (RFC 7518 sections 6.2.2, 6.3.2, 6.4; RFC 8037 section 2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/**
 * Checks every key of a fetched set before any token relies on it: the keys are imported here, once per
 * fetch, so that a key the runtime cannot use is left out (and reported) instead of failing each request
 * that names it. A token naming a rejected key is then refused as signed with an unknown key.
 *
 * @param algorithms the issuer's allowed JWS algorithms
 * @param maxModulusBits the largest RSA modulus accepted (`max_rsa_key_bits`)
 */
export async function checkKeySet(
  keys: readonly unknown[],
  algorithms: readonly string[],
  maxModulusBits: number = RSA_KEY_LIMITS.defaultMaxModulusBits,
): Promise<CheckedKeySet> {
  const usable: JWK[] = [];
  const rejected: RejectedKey[] = [];
  for (const key of keys) {
    const reason = await rejectionOf(key, algorithms, maxModulusBits);
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
  maxModulusBits: number,
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
  // Sizes and exponents first: a key that would make every verification slow is never imported.
  const problem = keyShapeProblem(jwk, alg, maxModulusBits);
  if (problem === 'key_too_short' || problem === 'key_too_long' || problem === 'exponent_invalid')
    return problem;
  if (problem !== undefined) return 'not_importable';
  try {
    await importJWK(jwk as JWK, alg);
    return undefined;
  } catch {
    return 'not_importable';
  }
}
