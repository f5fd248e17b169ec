/*
 * Worker thread of bench-tokens.ts: signs JWTs number `from` (inclusive) to `to` (exclusive), the same
 * header and claims for all, plus the `numbered` claims (claim name → prefix) set to `${prefix}${i}` (each
 * access token its own `sub` and `jti`, each DPoP proof its own `jti`), and posts them back as one array.
 * RS256 (RSA key) or ES256 (P-256 key, `dsaEncoding: 'ieee-p1363'` as JWS wants). Plain JavaScript so that
 * the worker needs no TypeScript hooks.
 */
import { Buffer } from 'node:buffer';
import { createPrivateKey, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * @type {{ privateKeyPem: string, header: object, claims: object, numbered: Record<string, string>,
 *   dsaEncoding?: 'der' | 'ieee-p1363', from: number, to: number }}
 */
const job = workerData;
const key = { key: createPrivateKey(job.privateKeyPem), dsaEncoding: job.dsaEncoding ?? 'der' };
const encode = (/** @type {object} */ value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = encode(job.header);
const numbered = Object.entries(job.numbered);
const tokens = [];
for (let i = job.from; i < job.to; i++) {
  /** @type {Record<string, unknown>} */
  const claims = { ...job.claims };
  for (const [name, prefix] of numbered) claims[name] = `${prefix}${i}`;
  const input = `${header}.${encode(claims)}`;
  tokens.push(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`);
}
parentPort?.postMessage(tokens);
