import { readFileSync } from 'node:fs';

/**
 * The package's manifest, read at run time relative to the built file: `dist/cli/main.js` (or
 * `dist-sidecar/cli/`, or `src/cli/` under the tests) is two folders below it, in a checkout as in both
 * images (`/app/dist/cli/`, `/app/package.json`). Read only for `authz --version`.
 */
const PACKAGE_JSON = new URL('../../package.json', import.meta.url);

/**
 * The `version` of package.json, e.g. `0.1.0`.
 * @throws Error when the manifest cannot be read or has no version.
 */
export function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown };
  if (typeof version !== 'string') throw new Error(`${PACKAGE_JSON.pathname} has no "version"`);
  return version;
}
