import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './process.js';

/*
 * The setup file of the `go-tools` vitest project (vitest.config.ts): before each of its files, the tools
 * built from the Go module proxy (kustomize, manifest-check, promtool, the OpenTelemetry Collector) and
 * Keycloak must be installed. `npm test`'s pretest starts their build in the background (scripts/install-go-tools.sh
 * --background); this waits for it to end (its lock), then reads what it ended with. Without a status (the
 * script never ran, e.g. `npx vitest run` on a fresh checkout) or after a failure, it runs the script here,
 * in the foreground, so that the error it prints is the one the test run reports.
 */

const LOCK = path.join(repoRoot, '.tools', '.go-tools.lock');
const STATUS = path.join(repoRoot, '.tools', 'go-tools.status');
const LOG = path.join(repoRoot, '.tools', 'go-tools.log');
/** A guard against a build that hangs: a first build takes some 5 CPU-minutes, longer on a loaded machine. */
const WAIT_MS = 20 * 60_000; // 20 minutes

function status(): string {
  return existsSync(STATUS) ? readFileSync(STATUS, 'utf8').trim() : '';
}

if (existsSync(LOCK)) {
  // A shared lock is granted once the installing run (which holds it exclusively) has ended.
  const waited = spawnSync('flock', ['--shared', LOCK, 'true'], { timeout: WAIT_MS });
  if (waited.error !== undefined || waited.status !== 0) {
    throw new Error(`the Go tools' build did not end within ${WAIT_MS / 60_000} minutes (${LOG})`);
  }
}
if (status() !== 'ok') {
  const run = spawnSync('bash', [path.join(repoRoot, 'scripts', 'install-go-tools.sh')], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: WAIT_MS,
  });
  if (run.status !== 0) {
    const background = existsSync(LOG) ? readFileSync(LOG, 'utf8').slice(-4000) : '';
    throw new Error(
      `scripts/install-go-tools.sh failed (exit ${String(run.status)}):\n${run.stderr.slice(-4000)}` +
        (background === '' ? '' : `\n\nThe background run's output (${LOG}):\n${background}`),
    );
  }
}
