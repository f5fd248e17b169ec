import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { policyYaml, writeTextFile } from '../kit/authz-harness.js';
import { repoRoot, runCli, startCli, startedLine, type Finished } from '../kit/process.js';
import { suiteTempDir } from '../kit/test-hooks.js';
import { generateTestKey } from '../kit/tokens.js';

/*
 * `authz` loads what it runs: the ES module loader's resolved URLs, recorded by a module hook
 * (test/kit/record-module-urls.mjs, `node --import`), show which of the built modules each command
 * line loads. Above all, `authz serve` loads no demo module.
 */

const RECORDER = path.join(repoRoot, 'test', 'kit', 'record-module-urls.mjs');
const DIST = path.join(repoRoot, 'dist');
const DIST_URL = pathToFileURL(DIST + path.sep).href;

/** The ops commands' implementations, which only their own command lines should load. */
const OPS_COMMAND_MODULES = [
  'policy-tools/check-policy-command.js',
  'policy-tools/explain-command.js',
  'policy-tools/test-command.js',
  'policy-tools/diff-command.js',
];

/** A command's implementation (`cli/serve-command.js`, `policy-tools/test-command.js`, ...) or a server. */
const IMPLEMENTATION = /^(cli\/serve|policy-tools\/[a-z-]+|demo\/.+)-command\.js$|-server\.js$/;

/** Every JavaScript module of the full build outside the web app, relative to dist/. */
function builtModules(dir = DIST): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return full === path.join(DIST, 'web') ? [] : builtModules(full);
    return entry.name.endsWith('.js') ? [path.relative(DIST, full).split(path.sep).join('/')] : [];
  });
}

interface Recorded {
  readonly result: Finished;
  /** The project's modules that were loaded, relative to dist/ (`cli/main.js`), sorted. */
  readonly modules: readonly string[];
  /** Every distinct `file:` URL resolved, the project's and its dependencies'. */
  readonly fileUrls: number;
  /** The packages under node_modules those URLs are in (`ioredis`, `@grpc/grpc-js`), sorted. */
  readonly packages: readonly string[];
}

describe('the modules each command line loads (dist/, resolved URLs recorded by a loader hook)', () => {
  const temp = suiteTempDir('authz-cli-modules-');
  let policyFile: string;
  let runs = 0;

  beforeAll(async () => {
    const key = await generateTestKey('modules-test-key');
    await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    policyFile = await writeTextFile(
      temp.dir,
      'policy.yaml',
      policyYaml({ keys: { jwksFile: 'jwks.json' } }),
    );
  });

  /** Runs `authz ARGS` with the recorder; a long-running command is stopped once it has started. */
  async function record(
    args: readonly string[],
    { longRunning = false, env = {} }: { longRunning?: boolean; env?: Record<string, string> } = {},
  ): Promise<Recorded> {
    const file = path.join(temp.dir, `modules-${++runs}.txt`);
    const options = {
      cwd: temp.dir,
      env: { RECORD_MODULE_URLS: file, AUTHZ_DEV_DIR: path.join(temp.dir, 'dev'), ...env },
      nodeArgs: ['--import', RECORDER],
    };
    let result: Finished;
    if (longRunning) {
      const run = startCli(args, options);
      await startedLine(run);
      result = await run.stop(12_000);
    } else {
      result = await runCli(args, options);
    }
    const urls = new Set((await readFile(file, 'utf8')).split('\n').filter((url) => url.startsWith('file:')));
    const modules = [...urls]
      .filter((url) => url.startsWith(DIST_URL) && url.endsWith('.js'))
      .map((url) => path.relative(DIST, fileURLToPath(url)).split(path.sep).join('/'))
      .sort();
    const packages = [...urls].flatMap((url) => {
      const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
      return match === null ? [] : [match[1]!];
    });
    return { result, modules, fileUrls: urls.size, packages: [...new Set(packages)].sort() };
  }

  const demo = (modules: readonly string[]) => modules.filter((module) => module.startsWith('demo/'));

  it('authz serve loads no demo module, nor the policy tools', async () => {
    const { result, modules, fileUrls } = await record(
      ['serve', '--policy', policyFile, '--listen', '127.0.0.1:0'],
      { longRunning: true },
    );
    expect(result.code, result.stderr).toBe(0);

    expect(demo(modules)).toEqual([]);
    for (const module of OPS_COMMAND_MODULES) expect(modules).not.toContain(module);
    // What serving takes, so an empty recording cannot pass for a clean one.
    for (const module of [
      'cli/main.js',
      'cli/serve-command.js',
      'server/authz-server.js',
      'envoy/check-handler.js',
      'authn/verify-access-token.js',
      'policy/compile-policy.js',
    ]) {
      expect(modules).toContain(module);
    }
    const sidecarModules = builtModules().filter((module) => !module.startsWith('demo/'));
    expect(modules.length).toBeGreaterThan(20);
    expect(modules.length).toBeLessThan(sidecarModules.length);
    expect(fileUrls).toBeGreaterThan(modules.length); // its dependencies' ES modules too
    console.info(
      `authz serve loaded ${modules.length} of the ${builtModules().length} modules in dist/ ` +
        `(0 of the demo's ${demo(builtModules()).length}); ${fileUrls} file: URLs in all`,
    );
  });

  it('authz serve loads the Redis client and the OpenTelemetry SDK only when configured to use them', async () => {
    const memory = await record(['serve', '--policy', policyFile, '--listen', '127.0.0.1:0'], {
      longRunning: true,
    });
    expect(memory.result.code, memory.result.stderr).toBe(0);
    expect(memory.packages).toContain('@grpc/grpc-js'); // the recorder sees dependencies
    expect(memory.packages).not.toContain('ioredis');
    expect(memory.packages.filter((name) => name.startsWith('@opentelemetry/'))).toEqual([]);

    // Nothing listens on port 1: the store is set up (and refuses proofs), the client loaded.
    const redisPolicy = await writeTextFile(
      temp.dir,
      'policy-redis.yaml',
      `dpop:\n  replay_store: { type: redis, url: "redis://127.0.0.1:1" }\n${policyYaml({ keys: { jwksFile: 'jwks.json' } })}`,
    );
    // Tracing on, to a collector that is not there: spans are dropped, the server serves.
    const redis = await record(['serve', '--policy', redisPolicy, '--listen', '127.0.0.1:0'], {
      longRunning: true,
      env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' },
    });
    expect(redis.result.code, redis.result.stderr).toBe(0);
    expect(redis.packages).toContain('ioredis');
    expect(redis.packages).toContain('@opentelemetry/sdk-trace');
    expect(redis.packages).toContain('@opentelemetry/exporter-trace-otlp-proto');
  });

  it('sees demo modules when a demo command runs (the recorder works)', async () => {
    const { result, modules } = await record(['dev-token', '--scope', 'view:balance']);
    expect(result.code, result.stderr).toBe(0);

    expect(modules).toContain('demo/demo-commands.js');
    expect(modules).toContain('demo/dev-token/dev-token-command.js');
    expect(modules).toContain('demo/dev-token/mint-dev-token.js');
    // Only what dev-token runs: not the other demo commands, not the server.
    expect(
      demo(modules).filter((module) => /^demo\/(idp|bank|walkthrough)\/.*-command\.js$/.test(module)),
    ).toEqual([]);
    expect(modules).not.toContain('demo/idp/dev-idp-server.js');
    expect(modules).not.toContain('server/authz-server.js');
  });

  it("authz --help reads the demo's command table, but loads no command", async () => {
    const { result, modules } = await record(['--help']);
    expect(result.code).toBe(0);

    expect(modules).toContain('demo/demo-commands.js');
    expect(modules.filter((module) => IMPLEMENTATION.test(module))).toEqual([]);
  });

  it.each(['serve', 'check-policy', 'explain', 'test', 'diff', 'owners'])(
    'authz %s --help loads no demo module and not the command itself',
    async (command) => {
      const { result, modules } = await record([command, '--help']);
      expect(result.code).toBe(0);
      expect(result.stdout.startsWith(`usage: authz ${command}`)).toBe(true);

      expect(demo(modules)).toEqual([]);
      expect(modules.filter((module) => IMPLEMENTATION.test(module))).toEqual([]);
    },
  );

  it('authz check-policy loads its own module, no demo module and no server', async () => {
    const { result, modules } = await record(['check-policy', policyFile]);
    expect(result.code, result.stdout + result.stderr).toBe(0);

    expect(modules).toContain('policy-tools/check-policy-command.js');
    expect(demo(modules)).toEqual([]);
    expect(modules).not.toContain('server/authz-server.js');
    expect(modules).not.toContain('cli/serve-command.js');
  });
});
