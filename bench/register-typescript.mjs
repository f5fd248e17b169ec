/*
 * `node --import ./bench/register-typescript.mjs bench/run-bench.ts`: registers typescript-hooks.mjs so
 * Node 20 runs the bench's TypeScript in place (Node 20 cannot strip types itself).
 */
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
