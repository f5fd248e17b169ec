import { execFile } from 'node:child_process';
import { cp, symlink, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, policyYaml, writeTextFile } from '../kit/authz-harness.js';
import { CLI_BUILDS, repoRoot, requireBuild, runCli, startCli, startedLine } from '../kit/process.js';
import { suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey } from '../kit/tokens.js';

/*
 * The sidecar's own build (tsconfig.sidecar.json -> dist-sidecar/), which the Dockerfile's `sidecar` target
 * is made of: it holds src/ without src/demo/ (built by `npm run build`: checked here, not compiled again),
 * tsc refuses to compile it when a sidecar module imports the demo, and it runs as the product, where the
 * demo's commands do not exist.
 */

const execFileAsync = promisify(execFile);
const TSC = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
const SIDECAR_DIST = path.join(repoRoot, 'dist-sidecar');

interface TscResult {
  readonly code: number;
  readonly output: string;
}

/** Runs tsc in `cwd` and returns its exit code and output (tsc reports errors on stdout). */
async function tsc(cwd: string, args: readonly string[]): Promise<TscResult> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [TSC, ...args], {
      cwd,
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      output: `${failed.stdout ?? ''}${failed.stderr ?? ''}`,
    };
  }
}

/** The `.ts` files under `dir`, relative to it, `/`-separated, sorted. */
function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((file) => file.split(path.sep).join('/'))
    .filter((file) => file.endsWith('.ts'))
    .sort();
}

describe('tsconfig.sidecar.json', () => {
  it('refuses to compile when a sidecar module imports the demo (TS6307)', { timeout: 120_000 }, async () => {
    // A copy of the project in which the server imports the demo's command table.
    const temp = await createTempDir('authz-sidecar-tsc-');
    try {
      for (const entry of [
        'src',
        'package.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'tsconfig.sidecar.json',
      ]) {
        await cp(path.join(repoRoot, entry), path.join(temp.dir, entry), { recursive: true });
      }
      await symlink(path.join(repoRoot, 'node_modules'), path.join(temp.dir, 'node_modules'), 'dir');
      const server = path.join(temp.dir, 'src', 'server', 'authz-server.ts');
      await writeFile(server, `import '../demo/demo-commands.js';\n`, { flag: 'a' });

      const { code, output } = await tsc(temp.dir, ['-p', 'tsconfig.sidecar.json', '--noEmit']);
      expect(code).not.toBe(0);
      expect(output).toMatch(
        /src\/server\/authz-server\.ts\(\d+,\d+\): error TS6307: File '.*src\/demo\/demo-commands\.ts' is not listed/,
      );
    } finally {
      await temp.remove();
    }
  });
});

describe('the sidecar build (dist-sidecar/, what the sidecar image carries)', () => {
  const temp = suiteTempDir('authz-sidecar-build-');

  beforeAll(() => requireBuild(CLI_BUILDS.sidecar));

  // That tsconfig.sidecar.json type-checks and compiles is `npm run build`'s (build:sidecar, in pretest):
  // its output is what is checked here, not compiled again.
  it('holds a module for every file of src/ but src/demo/, as tsconfig.sidecar.json compiles it', () => {
    const sources = typeScriptFiles(path.join(repoRoot, 'src'));
    const sidecar = sources.filter((file) => !file.startsWith('demo/'));
    expect(sidecar).toEqual(
      expect.arrayContaining(['cli/main.ts', 'server/authz-server.ts', 'policy-tools/test-command.ts']),
    );
    const missing = sidecar.filter(
      (file) => !existsSync(path.join(SIDECAR_DIST, file.replace(/\.ts$/, '.js'))),
    );
    expect(missing, 'src/ files without their dist-sidecar/ module').toEqual([]);
  });

  it('holds no demo module and no web app', () => {
    const top = readdirSync(SIDECAR_DIST);
    expect(top).not.toContain('demo');
    expect(top).not.toContain('web');
    expect(top).toEqual(expect.arrayContaining(['cli', 'server', 'envoy', 'policy', 'policy-tools']));
  });

  it("lists the sidecar's commands only, and knows no demo command (exit 2)", async () => {
    const help = await runCli(['--help'], { cwd: temp.dir, entry: CLI_BUILDS.sidecar });
    expect(help.code).toBe(0);
    const listed = [...help.stdout.matchAll(/^ {2}([a-z-]+)/gm)].map((match) => match[1]);
    expect(listed).toEqual(['serve', 'check-policy', 'explain', 'test', 'diff', 'owners']);
    expect(help.stdout).not.toMatch(/demo/i);

    for (const command of ['bank', 'statements', 'dev-token', 'dev-idp', 'demo-client']) {
      const { code, stdout, stderr } = await runCli([command, '--help'], {
        cwd: temp.dir,
        entry: CLI_BUILDS.sidecar,
      });
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(new RegExp(`^authz: unknown command "${command}"`));
    }
  });

  it('serves: starts, logs "started", exits 0 on SIGTERM', async () => {
    const key = await generateTestKey('sidecar-build-key');
    await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    const policyFile = await writeTextFile(
      temp.dir,
      'policy.yaml',
      policyYaml({ keys: { jwksFile: 'jwks.json' } }),
    );
    const serve = startCli(['serve', '--policy', policyFile, '--listen', '127.0.0.1:0'], {
      cwd: temp.dir,
      entry: CLI_BUILDS.sidecar,
    });
    expect(await startedLine(serve)).toMatchObject({ service: 'authz', policy: policyFile });
    const result = await serve.stop(12_000);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});
