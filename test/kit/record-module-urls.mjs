/*
 * `node --import ./test/kit/record-module-urls.mjs ...`: records the URL of every module the ES module
 * loader resolves, one per line, in the file named by RECORD_MODULE_URLS. The hooks run on the loader's own
 * thread (node:module register), so the file name is handed to them as data rather than read from there.
 * Plain JavaScript, not TypeScript: Node loads it before any compiler could run.
 */
import { register } from 'node:module';
import process from 'node:process';

const file = process.env['RECORD_MODULE_URLS'];
if (file === undefined || file === '') throw new Error('RECORD_MODULE_URLS must name the file to write');
register('./record-module-urls-hooks.mjs', import.meta.url, { data: { file } });
