import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise, type ICruiseOptions, type ICruiseResult } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The rules `npm run lint` enforces (.dependency-cruiser.mjs), run through dependency-cruiser's API on small
// throwaway trees: each forbidden import must be reported under its rule, each allowed one must not. That
// the real src, web/src, test, bench and faults break none is `npm run lint`'s own check (depcruise), run by `npm test`.

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CONFIG = join(REPO, '.dependency-cruiser.mjs');

const TSCONFIG = JSON.stringify({
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
  },
  include: ['src', 'web', 'test', 'bench', 'faults'],
});
// An npm package the fixture depends on, so an import of it resolves as a real one does.
const PACKAGE = JSON.stringify({
  name: 'boundaries-fixture',
  type: 'module',
  dependencies: { 'some-lib': '1.0.0' },
});
const SOME_LIB = {
  'node_modules/some-lib/package.json': JSON.stringify({
    name: 'some-lib',
    version: '1.0.0',
    main: 'index.js',
  }),
  'node_modules/some-lib/index.js': 'export const value = 1;\n',
};
const LEAF = 'export type Marker = number;\nexport const marker = 1;\n';

/** A module that only imports `specifiers`, for their side effects. */
function sideEffects(...specifiers: string[]): string {
  return specifiers.map((specifier) => `import '${specifier}';\n`).join('');
}

/** One violation, as the lint output names it: `rule: from → to`. */
type Finding = string;

let configured: ICruiseOptions;
let scratch: string;

beforeAll(async () => {
  configured = await extractDepcruiseOptions(CONFIG);
  scratch = await mkdtemp(join(tmpdir(), 'authz-boundaries-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Cruises `src`, `web/src`, `test`, `bench` and `faults` under `root` with the repository's rules, as `npm run lint` does. */
async function findings(root: string): Promise<Finding[]> {
  const tsConfig = join(root, 'tsconfig.json');
  const options: ICruiseOptions = { ...configured, baseDir: root, tsConfig: { fileName: tsConfig } };
  const roots = ['src', 'web/src', 'test', 'bench', 'faults'].filter((folder) =>
    existsSync(join(root, folder)),
  );
  const { output } = await cruise(roots, options, {}, { tsConfig: extractTSConfig(tsConfig) });
  return (output as ICruiseResult).summary.violations.map(
    (violation) => `${violation.rule.name}: ${violation.from} → ${violation.to}`,
  );
}

/** Writes a throwaway project (tsconfig, package.json, one npm package) holding `files`; returns its root. */
async function tree(name: string, files: Record<string, string>): Promise<string> {
  const root = join(scratch, name);
  const all = { 'tsconfig.json': TSCONFIG, 'package.json': PACKAGE, ...SOME_LIB, ...files };
  for (const [file, text] of Object.entries(all)) {
    await mkdir(dirname(join(root, file)), { recursive: true });
    await writeFile(join(root, file), text);
  }
  return root;
}

interface ForbiddenCase {
  rule: string;
  when: string;
  files: Record<string, string>;
  found: Finding[];
}

const forbidden: ForbiddenCase[] = [
  {
    rule: 'sidecar-not-demo',
    when: 'the server imports the demo bank',
    files: { 'src/server/start.ts': "import '../demo/bank/ledger.js';\n", 'src/demo/bank/ledger.ts': LEAF },
    found: ['sidecar-not-demo: src/server/start.ts → src/demo/bank/ledger.ts'],
  },
  {
    rule: 'sidecar-not-demo',
    when: 'the CLI loads a demo command on demand with import()',
    files: {
      'src/cli/commands.ts': "export const load = () => import('../demo/demo-commands.js');\n",
      'src/demo/demo-commands.ts': LEAF,
    },
    found: ['sidecar-not-demo: src/cli/commands.ts → src/demo/demo-commands.ts'],
  },
  {
    rule: 'sidecar-not-demo',
    when: 'a sidecar module imports the web app',
    files: {
      'src/http/serve-app.ts': "import '../../web/src/app-config.js';\n",
      'web/src/app-config.ts': LEAF,
    },
    found: ['sidecar-not-demo: src/http/serve-app.ts → web/src/app-config.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core takes a type from authn (type-only imports count)',
    files: {
      'src/authz/decide.ts':
        "import type { Marker } from '../authn/bearer.js';\nexport type Seen = Marker;\n",
      'src/authn/bearer.ts': LEAF,
    },
    found: ['core-pure: src/authz/decide.ts → src/authn/bearer.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports the policy loader',
    files: {
      'src/authz/decide.ts': "import '../policy/load-policy.js';\n",
      'src/policy/load-policy.ts': LEAF,
    },
    found: ['core-pure: src/authz/decide.ts → src/policy/load-policy.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports the policy file reader',
    files: {
      'src/authz/decide.ts': "import '../policy/read-text-file.js';\n",
      'src/policy/read-text-file.ts': LEAF,
    },
    found: ['core-pure: src/authz/decide.ts → src/policy/read-text-file.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports a policy watcher',
    files: {
      'src/authz/decide.ts': "import '../policy/policy-watcher.js';\n",
      'src/policy/policy-watcher.ts': LEAF,
    },
    found: ['core-pure: src/authz/decide.ts → src/policy/policy-watcher.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports the logger',
    files: { 'src/authz/decide.ts': "import '../log/create-logger.js';\n", 'src/log/create-logger.ts': LEAF },
    found: ['core-pure: src/authz/decide.ts → src/log/create-logger.ts'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports a Node core module',
    files: {
      'src/authz/decide.ts': "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n",
    },
    found: ['core-pure: src/authz/decide.ts → fs'],
  },
  {
    rule: 'core-pure',
    when: 'the decision core imports an npm package',
    files: { 'src/authz/decide.ts': "import 'some-lib';\n" },
    found: ['core-pure: src/authz/decide.ts → node_modules/some-lib/index.js'],
  },
  {
    rule: 'policy-lowest',
    when: 'the policy imports the decision core',
    files: {
      'src/policy/compile-policy.ts': "import '../authz/decision.js';\n",
      'src/authz/decision.ts': LEAF,
    },
    found: ['policy-lowest: src/policy/compile-policy.ts → src/authz/decision.ts'],
  },
  {
    rule: 'policy-lowest',
    when: 'the policy imports the logger',
    files: {
      'src/policy/compile-policy.ts': "import '../log/create-logger.js';\n",
      'src/log/create-logger.ts': LEAF,
    },
    found: ['policy-lowest: src/policy/compile-policy.ts → src/log/create-logger.ts'],
  },
  {
    rule: 'not-the-entry-point',
    when: 'a demo command imports the CLI entry point',
    files: { 'src/demo/demo-commands.ts': "import '../cli/main.js';\n", 'src/cli/main.ts': LEAF },
    found: ['not-the-entry-point: src/demo/demo-commands.ts → src/cli/main.ts'],
  },
  {
    rule: 'not-the-entry-point',
    when: 'the server loads the CLI entry point with import()',
    files: {
      'src/server/start.ts': "export const load = () => import('../cli/main.js');\n",
      'src/cli/main.ts': LEAF,
    },
    found: ['not-the-entry-point: src/server/start.ts → src/cli/main.ts'],
  },
  {
    rule: 'layers-args',
    when: 'argument parsing imports the command table',
    files: { 'src/args/parse.ts': "import '../cli/command-table.js';\n", 'src/cli/command-table.ts': LEAF },
    found: ['layers-args: src/args/parse.ts → src/cli/command-table.ts'],
  },
  {
    rule: 'layers-args',
    when: 'argument parsing imports an ops command',
    files: {
      'src/args/parse.ts': "import '../policy-tools/explain-command.js';\n",
      'src/policy-tools/explain-command.ts': LEAF,
    },
    found: ['layers-args: src/args/parse.ts → src/policy-tools/explain-command.ts'],
  },
  {
    rule: 'layers-command',
    when: "the commands' interface imports the CLI",
    files: {
      'src/command/command.ts': "import '../cli/command-help.js';\n",
      'src/cli/command-help.ts': LEAF,
    },
    found: ['layers-command: src/command/command.ts → src/cli/command-help.ts'],
  },
  {
    rule: 'layers-command',
    when: "the commands' interface imports a policy tool",
    files: {
      'src/command/command-io.ts': "import '../policy-tools/explain-command.js';\n",
      'src/policy-tools/explain-command.ts': LEAF,
    },
    found: ['layers-command: src/command/command-io.ts → src/policy-tools/explain-command.ts'],
  },
  {
    rule: 'layers-policy-tools',
    when: 'an ops command imports the CLI',
    files: {
      'src/policy-tools/explain.ts': "import '../cli/command-table.js';\n",
      'src/cli/command-table.ts': LEAF,
    },
    found: ['layers-policy-tools: src/policy-tools/explain.ts → src/cli/command-table.ts'],
  },
  {
    rule: 'layers-policy-tools',
    when: 'an ops command imports the gRPC adapter',
    files: {
      'src/policy-tools/explain.ts': "import '../envoy/check-handler.js';\n",
      'src/envoy/check-handler.ts': LEAF,
    },
    found: ['layers-policy-tools: src/policy-tools/explain.ts → src/envoy/check-handler.ts'],
  },
  {
    rule: 'layers-authn',
    when: 'token verification imports metrics',
    files: {
      'src/authn/verify.ts': "import '../metrics/authz-metrics.js';\n",
      'src/metrics/authz-metrics.ts': LEAF,
    },
    found: ['layers-authn: src/authn/verify.ts → src/metrics/authz-metrics.ts'],
  },
  {
    rule: 'layers-authn',
    when: 'token verification imports the server',
    files: {
      'src/authn/verify.ts': "import '../server/authz-server.js';\n",
      'src/server/authz-server.ts': LEAF,
    },
    found: ['layers-authn: src/authn/verify.ts → src/server/authz-server.ts'],
  },
  {
    rule: 'layers-tracing',
    when: 'tracing imports the Envoy adapter',
    files: {
      'src/tracing/check-span-attributes.ts': "import '../envoy/check-handler.js';\n",
      'src/envoy/check-handler.ts': LEAF,
    },
    found: ['layers-tracing: src/tracing/check-span-attributes.ts → src/envoy/check-handler.ts'],
  },
  {
    rule: 'tracing-sdk-only-when-on',
    when: 'the Envoy adapter imports the tracing set-up (which loads the OpenTelemetry SDK)',
    files: {
      'src/envoy/check-handler.ts': "import '../tracing/start-tracing.js';\n",
      'src/tracing/start-tracing.ts': LEAF,
    },
    found: ['tracing-sdk-only-when-on: src/envoy/check-handler.ts → src/tracing/start-tracing.ts'],
  },
  {
    rule: 'layers-envoy',
    when: 'the Envoy adapter imports the server',
    files: {
      'src/envoy/check-handler.ts': "import '../server/authz-server.js';\n",
      'src/server/authz-server.ts': LEAF,
    },
    found: ['layers-envoy: src/envoy/check-handler.ts → src/server/authz-server.ts'],
  },
  {
    rule: 'layers-client',
    when: 'the client library imports src/http',
    files: {
      'src/client/step-up-plan.ts': "import '../http/plain-http-url.js';\n",
      'src/http/plain-http-url.ts': LEAF,
    },
    found: ['layers-client: src/client/step-up-plan.ts → src/http/plain-http-url.ts'],
  },
  {
    rule: 'layers-client',
    when: 'the client library imports a Node core module',
    files: { 'src/client/step-up-plan.ts': "import 'node:crypto';\n" },
    found: ['layers-client: src/client/step-up-plan.ts → crypto'],
  },
  {
    rule: 'layers-client',
    when: 'the client library imports an npm package',
    files: { 'src/client/step-up-plan.ts': "import 'some-lib';\n" },
    found: ['layers-client: src/client/step-up-plan.ts → node_modules/some-lib/index.js'],
  },
  {
    rule: 'layers-contract',
    when: 'the shared contract imports the policy',
    files: {
      'src/contract/identity-headers.ts': "import '../policy/duration.js';\n",
      'src/policy/duration.ts': LEAF,
    },
    found: ['layers-contract: src/contract/identity-headers.ts → src/policy/duration.ts'],
  },
  {
    rule: 'web-uses-libraries',
    when: 'the web app imports the decision core',
    files: { 'web/src/main.ts': "import '../../src/authz/decide.js';\n", 'src/authz/decide.ts': LEAF },
    found: ['web-uses-libraries: web/src/main.ts → src/authz/decide.ts'],
  },
  {
    rule: 'web-client-entry',
    when: 'the web app imports a module of the client library past its entry point',
    files: {
      'web/src/main.ts': "import '../../src/client/step-up-plan.js';\n",
      'src/client/step-up-plan.ts': LEAF,
    },
    found: ['web-client-entry: web/src/main.ts → src/client/step-up-plan.ts'],
  },
  {
    rule: 'product-not-tests',
    when: 'the server imports the test kit',
    files: {
      'src/server/start.ts': "import '../../test/kit/free-port.js';\n",
      'test/kit/free-port.ts': LEAF,
    },
    found: ['product-not-tests: src/server/start.ts → test/kit/free-port.ts'],
  },
  {
    rule: 'product-not-tests',
    when: 'the web app imports the bench',
    files: { 'web/src/main.ts': "import '../../bench/limit-server.js';\n", 'bench/limit-server.ts': LEAF },
    found: ['product-not-tests: web/src/main.ts → bench/limit-server.ts'],
  },
  {
    rule: 'harness-is-the-kit',
    when: 'the fault suite imports a helper of the e2e project',
    files: {
      'faults/fault-stack.ts': "import '../test/e2e/envoy-process.js';\n",
      'test/e2e/envoy-process.ts': LEAF,
    },
    found: ['harness-is-the-kit: faults/fault-stack.ts → test/e2e/envoy-process.ts'],
  },
  {
    rule: 'harness-is-the-kit',
    when: 'the bench imports an integration test',
    files: {
      'bench/run-bench.ts': "import '../test/integration/grpc-check.test.js';\n",
      'test/integration/grpc-check.test.ts': LEAF,
    },
    found: ['harness-is-the-kit: bench/run-bench.ts → test/integration/grpc-check.test.ts'],
  },
  {
    rule: 'kit-below-tests',
    when: 'the kit imports a helper of a test project',
    files: {
      'test/kit/envoy.ts': "import '../e2e/demo-stack.js';\n",
      'test/e2e/demo-stack.ts': LEAF,
    },
    found: ['kit-below-tests: test/kit/envoy.ts → test/e2e/demo-stack.ts'],
  },
  {
    rule: 'kit-below-tests',
    when: 'the kit imports the fault suite',
    files: { 'test/kit/envoy.ts': "import '../../faults/scenario.js';\n", 'faults/scenario.ts': LEAF },
    found: ['kit-below-tests: test/kit/envoy.ts → faults/scenario.ts'],
  },
  {
    rule: 'web-client-entry',
    when: 'the demo imports a module of the client library past its entry point',
    files: {
      'src/demo/walkthrough/api-client.ts': "import '../../client/parse-www-authenticate.js';\n",
      'src/client/parse-www-authenticate.ts': LEAF,
    },
    found: ['web-client-entry: src/demo/walkthrough/api-client.ts → src/client/parse-www-authenticate.ts'],
  },
  {
    rule: 'no-circular',
    when: 'two modules import each other, one of them for a type only',
    files: {
      'src/authz/authorize.ts':
        "import { marker } from './decide.js';\nexport type Marker = number;\nexport const m = marker;\n",
      'src/authz/decide.ts':
        "import type { Marker } from './authorize.js';\nexport const marker: Marker = 1;\n",
    },
    // Reported once, at the first module of the cycle.
    found: ['no-circular: src/authz/authorize.ts → src/authz/decide.ts'],
  },
  {
    rule: 'not-to-unresolvable',
    when: 'an import names a file that does not exist',
    files: { 'src/server/start.ts': "import './no-such-module.js';\n" },
    found: ['not-to-unresolvable: src/server/start.ts → ./no-such-module.js'],
  },
];

describe('the architecture rules in .dependency-cruiser.mjs', () => {
  forbidden.forEach(({ rule, when, files, found }, index) => {
    it(`${rule}: reports it when ${when}`, async () => {
      const root = await tree(`forbidden-${index}`, files);

      expect((await findings(root)).sort()).toEqual([...found].sort());
    });
  });

  it('names every rule of the configuration in at least one case above', () => {
    const named = (configured.ruleSet?.forbidden ?? []).map((rule) => rule.name);

    expect(new Set(forbidden.map((entry) => entry.rule))).toEqual(new Set(named));
  });

  it('allows what the layout permits: libraries below, guests above, npm and Node where no rule forbids them', async () => {
    const root = await tree('allowed', {
      'src/contract/identity-headers.ts': LEAF,
      // The policy may read the constants of the documented interfaces (identity header names).
      'src/policy/compile-policy.ts': sideEffects(
        'node:fs',
        'some-lib',
        './compiled-policy.js',
        '../contract/identity-headers.js',
      ),
      'src/policy/compiled-policy.ts': LEAF,
      'src/authz/decide.ts': sideEffects('../policy/compile-policy.js', '../contract/identity-headers.js'),
      'src/authz/decision.ts':
        "import type { Marker } from '../policy/compiled-policy.js';\nexport type M = Marker;\n",
      'src/authn/verify.ts': sideEffects(
        'node:crypto',
        'some-lib',
        '../policy/compiled-policy.js',
        '../authz/decision.js',
      ),
      'src/args/usage-error.ts': LEAF,
      'src/command/command.ts': sideEffects('../args/usage-error.js'),
      'src/policy-tools/explain.ts': sideEffects(
        '../args/usage-error.js',
        '../command/command.js',
        '../authz/decide.js',
        '../authn/verify.js',
      ),
      'src/envoy/check-handler.ts': sideEffects('../authz/decide.js', '../authn/verify.js', '../log/log.js'),
      'src/log/log.ts': LEAF,
      'src/server/authz-server.ts': sideEffects('../envoy/check-handler.js', '../metrics/metrics.js'),
      'src/metrics/metrics.ts': LEAF,
      'src/cli/main.ts': `${sideEffects('../args/usage-error.js', '../command/command.js')}export const load = () => import('../policy-tools/explain.js');\n`,
      'src/client/step-up-plan.ts': sideEffects('../contract/identity-headers.js'),
      'src/client/index.ts': sideEffects('./step-up-plan.js'),
      'src/http/plain-http-url.ts': LEAF,
      'src/demo/bank/bank-server.ts': sideEffects(
        '../../command/command.js',
        '../../server/authz-server.js',
        '../../client/index.js',
      ),
      'test/kit/free-port.ts': sideEffects('node:net', '../fixtures/policy.js'),
      'test/fixtures/policy.ts': LEAF,
      'test/e2e/bank.test.ts': sideEffects(
        '../kit/free-port.js',
        '../../src/authz/decide.js',
        './bank-stack.js',
      ),
      'test/e2e/bank-stack.ts': LEAF,
      'bench/run-bench.ts': sideEffects('../test/kit/free-port.js', '../src/authz/decide.js'),
      'faults/fault-stack.ts': sideEffects('../test/kit/free-port.js', '../bench/run-bench.js'),
      'web/src/main.ts': sideEffects(
        'some-lib',
        '../../src/client/index.js',
        '../../src/http/plain-http-url.js',
        '../../src/contract/identity-headers.js',
      ),
    });

    expect(await findings(root)).toEqual([]);
  });
});
