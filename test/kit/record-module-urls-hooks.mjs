/*
 * Module customization hooks (https://nodejs.org/api/module.html#customization-hooks) registered by
 * record-module-urls.mjs: every resolved URL is appended to a file, synchronously, so that nothing is lost
 * when the process exits at once (a command that ends, or `serve` stopped by a signal).
 */
import { appendFileSync } from 'node:fs';

let file = '';

/** @param {{ file: string }} data */
export function initialize(data) {
  file = data.file;
}

/**
 * @param {string} specifier
 * @param {unknown} context
 * @param {(specifier: string, context: unknown) => Promise<{ url: string }>} nextResolve
 */
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  appendFileSync(file, resolved.url + '\n');
  return resolved;
}
