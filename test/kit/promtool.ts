import { spawnSync } from 'node:child_process';
import { installedBinary } from './installed-binary.js';
import { repoRoot } from './process.js';

/*
 * promtool (Prometheus's own checker) for the monitoring kit of deploy/monitoring/: rule files checked and
 * unit-tested, a scrape linted, exactly as Prometheus would read them.
 */

/**
 * The path of promtool: `$PROMTOOL_BIN` if set, else `.tools/bin/promtool` as `npm run promtool:install`
 * (scripts/install-promtool.sh) builds it.
 * @throws Error when it is missing or not executable, naming the command that installs it
 */
export function promtoolBinary(): string {
  return installedBinary({
    name: 'promtool',
    envVar: 'PROMTOOL_BIN',
    installedAt: '.tools/bin/promtool',
    npmScript: 'promtool:install',
    script: 'scripts/install-promtool.sh',
  });
}

/** How one promtool command ended. */
export interface PromtoolRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `promtool ARGS` in the repository's root, `input` on its standard input, and returns how it ended
 * (a failing check is a result to assert on, not an exception).
 */
export function runPromtool(args: readonly string[], input?: string): PromtoolRun {
  const run = spawnSync(promtoolBinary(), args, {
    cwd: repoRoot,
    encoding: 'utf8',
    ...(input === undefined ? {} : { input }),
    timeout: 60_000, // a guard: each check takes well under a second
  });
  if (run.error !== undefined) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}
