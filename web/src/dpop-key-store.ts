import { dpopKeyFromPair, type DpopKey, type DpopKeyPair } from '../../src/client/index.js';

/** A WebCrypto key, in the types of both the DOM and Node (this module is tested in Node). */
type WebCryptoKey = DpopKeyPair['privateKey'];

/** Where the app keeps its DPoP key pair between page loads. */
export interface KeyPairStorage {
  /**
   * In one step: returns the stored pair when `usable` accepts it, else stores `fresh` and returns it.
   * One step, so two tabs opening at once end up with the same key.
   */
  keepOrReplace(fresh: DpopKeyPair, usable: (stored: unknown) => stored is DpopKeyPair): Promise<DpopKeyPair>;
}

/** The app's DPoP key, and whether it outlives this page load. */
export interface AppDpopKey {
  readonly key: DpopKey;
  /** False when the browser would not store it (IndexedDB blocked): it lasts as long as this page. */
  readonly persisted: boolean;
}

/**
 * A new P-256 key pair for ES256 proofs (RFC 9449 section 4.2 needs an asymmetric key). The private key is
 * not extractable: no script, the page's own included, can export it, only sign with it here (the browser
 * keeps its bytes in the profile, out of the web's reach). WebCrypto makes the public half extractable
 * whatever the flag says (it goes into every proof).
 */
export function generateDpopKeyPair(): Promise<DpopKeyPair> {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
}

/**
 * Whether a stored value is a key pair this app made: ECDSA P-256, a private key that signs and cannot be
 * extracted. Anything else (an old format, a record written by something else) is replaced, not used.
 */
export function isUsableKeyPair(value: unknown): value is DpopKeyPair {
  if (typeof value !== 'object' || value === null) return false;
  const { privateKey, publicKey } = value as Partial<Record<'privateKey' | 'publicKey', unknown>>;
  const p256 = (key: WebCryptoKey) => {
    const algorithm = key.algorithm as { name: string; namedCurve?: string };
    return algorithm.name === 'ECDSA' && algorithm.namedCurve === 'P-256';
  };
  return (
    isCryptoKey(privateKey) &&
    isCryptoKey(publicKey) &&
    privateKey.type === 'private' &&
    publicKey.type === 'public' &&
    !privateKey.extractable &&
    privateKey.usages.includes('sign') &&
    p256(privateKey) &&
    p256(publicKey)
  );
}

/**
 * The app's DPoP key: the one kept in `storage` from an earlier page load, else a new one, stored. Kept
 * across reloads so that every token this browser gets is bound to one key (`cnf.jkt`, RFC 9449 section
 * 6.1). When storage fails the key lives in this page only: DPoP still works, each load has its own key.
 */
export async function loadDpopKey(
  storage: KeyPairStorage | undefined,
  generate: () => Promise<DpopKeyPair> = generateDpopKeyPair,
): Promise<AppDpopKey> {
  const fresh = await generate();
  let pair = fresh;
  let persisted = false;
  if (storage !== undefined) {
    try {
      pair = await storage.keepOrReplace(fresh, isUsableKeyPair);
      persisted = true;
    } catch {
      // IndexedDB can be disabled or refuse to open (some private modes); a page-only key still works.
    }
  }
  return { key: await dpopKeyFromPair(pair), persisted };
}

/** WebCrypto's key class: a stored plain object that merely looks like a key is not one. */
function isCryptoKey(value: unknown): value is WebCryptoKey {
  const CryptoKeyClass = (globalThis as { CryptoKey?: abstract new () => unknown }).CryptoKey;
  return CryptoKeyClass !== undefined && value instanceof CryptoKeyClass;
}
