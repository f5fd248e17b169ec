import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Command } from '../../src/command/command.js';
import { commandHelp } from '../../src/cli/command-help.js';
import { OWN_COMMANDS } from '../../src/cli/own-commands.js';
import { SIDECAR_COMMANDS } from '../../src/cli/sidecar-commands.js';
import { commandTable as DEMO_COMMANDS } from '../../src/demo/demo-commands.js';
import {
  CLI_BUILDS,
  cleanEnv,
  missingBuild,
  repoRoot,
  runCli as runBuiltCli,
  type Finished,
} from '../kit/process.js';

/*
 * How the built command line behaves for a person at a terminal: help on every command, --version,
 * "did you mean", a reader that goes away (`| head -1`) and shell completion. Runs dist/cli/main.js from
 * the repository root, where policy.yaml and policy.test.yaml are.
 */

const cliPath = CLI_BUILDS.full;
const TABLE_COMMANDS: readonly Command[] = [...SIDECAR_COMMANDS.commands, ...DEMO_COMMANDS.commands];
const EVERY_COMMAND: readonly Command[] = [...TABLE_COMMANDS, ...OWN_COMMANDS];
/** The exit code for output cut short by its reader (128 + SIGPIPE), as docs/cli.md says. */
const CLOSED_PIPE = 141;

const execFileAsync = promisify(execFile);

/**
 * Whether a run met a build that someone is rewriting (`npm run build` empties dist/ first): the entry or a
 * module it imports missing. Such a run is tried again.
 */
const midRebuild = (result: Finished) =>
  !existsSync(cliPath) || /ERR_MODULE_NOT_FOUND|Cannot find module/.test(result.stderr);

/** How long a run waits for a rebuild of dist/ to finish (the full build takes some 30 s). */
const REBUILD_WAIT_MS = 90_000; // 90 seconds

async function retried(run: () => Promise<Finished>): Promise<Finished> {
  const deadline = Date.now() + REBUILD_WAIT_MS;
  for (;;) {
    const result = await run();
    if (!midRebuild(result) || Date.now() > deadline) return result;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }
}

const runCli = (args: readonly string[]) => retried(() => runBuiltCli(args, { cwd: repoRoot }));

/** `authz ARGS | READER` in bash: the exit code is authz's, stdout the reader's, stderr authz's. */
function runPiped(args: readonly string[], reader: string): Promise<Finished> {
  const script = `"$@" | ${reader}; exit "\${PIPESTATUS[0]}"`;
  return retried(() =>
    execFileAsync('bash', ['-c', script, 'bash', process.execPath, cliPath, ...args], {
      cwd: repoRoot,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 15_000,
    }).then(
      ({ stdout, stderr }) => ({ code: 0, signal: null, stdout, stderr }),
      (error: { code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string }) => ({
        code: error.code,
        signal: error.signal,
        stdout: error.stdout,
        stderr: error.stderr,
      }),
    ),
  );
}

// Each test may wait out a rebuild (REBUILD_WAIT_MS), then run.
describe('authz for a person at a terminal (dist/cli/main.js)', { timeout: REBUILD_WAIT_MS + 30_000 }, () => {
  beforeAll(async () => {
    await retried(async () => ({ code: 0, signal: null, stdout: '', stderr: '' })); // waits while dist/ is rebuilt
    if (!existsSync(cliPath)) throw new Error(missingBuild(cliPath));
  }, REBUILD_WAIT_MS + 10_000);

  describe('--help', () => {
    it.each(EVERY_COMMAND.map((command) => [command.name, command] as const))(
      'authz %s --help and -h print its usage on stdout and exit 0, whatever else is given',
      async (_name, command) => {
        const runs = await Promise.all([
          runCli([command.name, '--help']),
          runCli([command.name, '-h']),
          runCli([command.name, 'extra', '--no-such-flag', '--help']),
          runCli([command.name, '--listen', '-h', 'more']),
        ]);
        for (const { code, stdout, stderr } of runs) {
          expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
          expect(stdout).toBe(commandHelp(command));
        }
      },
    );

    it('authz --help, -h and help list every command, and the usage of --version and completion', async () => {
      for (const args of [['--help'], ['-h'], ['help']]) {
        const { code, stdout, stderr } = await runCli(args);
        expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
        expect(stdout).toContain('\n       authz --version\n       authz completion bash|zsh\n');
        for (const command of TABLE_COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${command.name} `, 'm'));
      }
    });
  });

  it('authz --version and -V print the version of package.json and exit 0, in both builds', async () => {
    const { version } = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
      version: string;
    };
    const runs = [
      await runCli(['--version']),
      await runCli(['-V']),
      await retried(() => runBuiltCli(['--version'], { cwd: repoRoot, entry: CLI_BUILDS.sidecar })),
    ];
    for (const run of runs)
      expect(run).toEqual({ code: 0, signal: null, stdout: `authz ${version}\n`, stderr: '' });
  });

  describe('did you mean', () => {
    it.each([
      ['servee', 'serve'],
      ['chek-policy', 'check-policy'],
      ['check', 'check-policy'],
      ['explian', 'explain'],
      ['completon', 'completion'],
      ['--verison', '--version'],
    ])('authz %s: exit 2, unknown command, did you mean "%s"', async (typed, meant) => {
      const { code, stdout, stderr } = await runCli([typed]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.split('\n')[0]).toBe(`authz: unknown command "${typed}"; did you mean "${meant}"?`);
    });

    it.each([
      [['serve', '--polcy', 'policy.yaml'], '--polcy', '--policy', 'serve'],
      [
        ['explain', '--polcy', 'policy.yaml', '--method', 'GET', '--path', '/'],
        '--polcy',
        '--policy',
        'explain',
      ],
      [['check-policy', 'policy.yaml', '--stirct'], '--stirct', '--strict', 'check-policy'],
      [['dev-token', '--scpoe', 'x'], '--scpoe', '--scope', 'dev-token'],
    ])('authz %j: exit 2 naming %s, did you mean %s, then the usage', async (args, typed, meant, name) => {
      const { code, stdout, stderr } = await runCli(args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(
        new RegExp(
          `^authz: unknown option "${typed}"; did you mean "${meant}"\\?\\n\\nusage: authz ${name} `,
        ),
      );
    });

    it('lists the flags of the command when none is near', async () => {
      const { code, stderr } = await runCli(['diff', 'policy.yaml', 'policy.yaml', '--verbose']);
      expect(code).toBe(2);
      expect(stderr.split('\n')[0]).toBe('authz: unknown option "--verbose" (options: --json)');
    });
  });

  describe('a reader that goes away', () => {
    it.each([
      [['test', 'policy.test.yaml'], /^policy\.test\.yaml: \d+ cases against policy\.yaml/],
      [['diff', 'policy.yaml', 'policy.yaml'], /^no decision changes in \d+ checks/],
    ])('authz %j | head -1: the first line, nothing on stderr, no stack trace', async (args, firstLine) => {
      const { code, stdout, stderr } = await runPiped(args, 'head -1');
      expect(stderr).toBe('');
      expect(stdout.split('\n')).toHaveLength(2);
      expect(stdout).toMatch(firstLine);
      // 0 when it had written everything before head left, 141 when a write met the closed pipe.
      expect([0, CLOSED_PIPE]).toContain(code);
    });

    it.each([
      ['test', 'policy.test.yaml'],
      ['diff', 'policy.yaml', 'policy.yaml'],
      ['check-policy', 'policy.yaml'],
      ['--help'],
      ['completion', 'bash'],
    ])(
      'authz %s ... | true: ends quietly with exit 141 (the reader is gone before the first write)',
      async (...args) => {
        const { code, stdout, stderr } = await runPiped(args, 'true');
        expect({ code, stdout, stderr }).toEqual({ code: CLOSED_PIPE, stdout: '', stderr: '' });
      },
    );
  });

  describe('completion', () => {
    it('authz completion bash: a script bash -n accepts, naming every command, that bash loads', async () => {
      const { code, stdout: script, stderr } = await runCli(['completion', 'bash']);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      await execFileAsync('bash', ['-n', '-c', script]);
      for (const command of EVERY_COMMAND) expect(script).toMatch(new RegExp(`\\b${command.name}\\b`));

      const loaded = await execFileAsync(
        'bash',
        ['-c', 'source <("$@" completion bash) && complete -p authz', 'bash', process.execPath, cliPath],
        { cwd: repoRoot, env: cleanEnv(), encoding: 'utf8' },
      );
      expect(loaded.stdout).toBe('complete -o default -F _authz authz\n');
    });

    it('authz completion zsh: a compdef script naming every command and its flags', async () => {
      const { code, stdout: script, stderr } = await runCli(['completion', 'zsh']);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(script.startsWith('#compdef authz\n')).toBe(true);
      for (const command of TABLE_COMMANDS) expect(script).toContain(`    (${command.name}) flags=(`);
    });

    it('authz completion fish: exit 2 naming the shells it knows', async () => {
      const { code, stderr } = await runCli(['completion', 'fish']);
      expect(code).toBe(2);
      expect(stderr.split('\n')[0]).toBe('authz: no completion for "fish" (shells: bash, zsh)');
    });
  });
});
