import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root (this file lives in test/e2e/). */
export const repoRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Locates the Envoy binary the end-to-end tests run: `$ENVOY_BIN` if set, else `.tools/bin/envoy` as installed
 * by `npm run envoy:install` (scripts/install-envoy.sh).
 *
 * Throws rather than returning something a test could skip on: a suite that silently skips when Envoy is
 * missing would report green while proving nothing about the proxy configuration.
 *
 * @returns the absolute path of an executable Envoy binary
 * @throws Error when the binary is missing or not executable, naming the command that installs it
 */
export function envoyBinary(): string {
  const fromEnv = process.env.ENVOY_BIN;
  const candidate = fromEnv ? path.resolve(fromEnv) : path.join(repoRoot, '.tools', 'bin', 'envoy');
  const source = fromEnv ? `ENVOY_BIN=${fromEnv}` : candidate;
  try {
    // statSync follows the .tools/bin/envoy symlink, so a dangling link (venv removed) counts as missing.
    if (!statSync(candidate).isFile()) throw new Error('not a regular file');
    accessSync(candidate, constants.X_OK);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `Envoy is not installed (${source}: ${reason}). Run \`npm run envoy:install\` ` +
        '(scripts/install-envoy.sh) or set ENVOY_BIN to an Envoy binary.',
    );
  }
  return candidate;
}
