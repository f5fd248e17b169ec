/*
 * Worker thread of bench-tokens.ts: signs RS256 JWTs number `from` (inclusive) to `to` (exclusive), each
 * with its own `sub` and `jti`, and posts them back as one array. Plain JavaScript so that the worker needs
 * no TypeScript hooks.
 */
import { Buffer } from 'node:buffer';
import { createPrivateKey, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * @type {{ privateKeyPem: string, header: object, claims: object, prefix: string, from: number, to: number }}
 */
const job = workerData;
const key = createPrivateKey(job.privateKeyPem);
const encode = (/** @type {object} */ value) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = encode(job.header);
const tokens = [];
for (let i = job.from; i < job.to; i++) {
  const input = `${header}.${encode({ ...job.claims, sub: `user-${i}`, jti: `${job.prefix}-${i}` })}`;
  tokens.push(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`);
}
parentPort?.postMessage(tokens);
