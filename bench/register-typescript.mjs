/*
 * `node --import ./bench/register-typescript.mjs bench/run-bench.ts`: registers typescript-hooks.mjs so
 * Node runs the bench's TypeScript in place (Node's own type stripping neither resolves the `./x.js`
 * specifiers our sources use to `./x.ts` nor compiles parameter properties, which src/ has).
 */
import { register } from 'node:module';

register('./typescript-hooks.mjs', import.meta.url);
