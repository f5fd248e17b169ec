import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './process.js';

/** A program a project script installs into `.tools/`, and how a person may point at another copy. */
export interface InstalledBinary {
  /** What it is, in the error: `Envoy`, `Redis`. */
  readonly name: string;
  /** The variable naming another binary (`ENVOY_BIN`). */
  readonly envVar: string;
  /** Where the install script puts it, relative to the repository (`.tools/bin/envoy`). */
  readonly installedAt: string;
  /** The npm script that installs it (`envoy:install`) and the script behind it. */
  readonly npmScript: string;
  readonly script: string;
}

/**
 * The absolute path of an executable binary: `$envVar` if set, else where the install script puts it.
 * Throws rather than returning something a test could skip on: a suite that skips when its real part is
 * missing would report green while proving nothing.
 *
 * @throws Error when it is missing or not executable, naming the command that installs it
 */
export function installedBinary(binary: InstalledBinary): string {
  const fromEnv = process.env[binary.envVar];
  const candidate = fromEnv ? path.resolve(fromEnv) : path.join(repoRoot, binary.installedAt);
  const source = fromEnv ? `${binary.envVar}=${fromEnv}` : candidate;
  try {
    // statSync follows a symlink (.tools/bin/envoy), so a dangling one (its venv removed) counts as missing.
    if (!statSync(candidate).isFile()) throw new Error('not a regular file');
    accessSync(candidate, constants.X_OK);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${binary.name} is not installed (${source}: ${reason}). Run \`npm run ${binary.npmScript}\` ` +
        `(${binary.script}) or set ${binary.envVar} to the path of another copy.`,
    );
  }
  return candidate;
}
