// The architecture's import rules (docs/architecture.md, "Layer rules"), checked by `npm run lint`.
//
// Paths are relative to the repository root and matched against resolved files, so `../authn/x.js` in
// src/authz is seen as src/authn/x.ts. Type-only imports count (tsPreCompilationDeps): a type is still a
// dependency of the design, even though the compiler erases it.

/** The sidecar's policy I/O: reading files and watching them. Everything else in src/policy is pure. */
const POLICY_IO = ['load-policy\\.ts$', 'read-text-file\\.ts$', '.*watch'];

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'sidecar-not-demo',
      comment:
        'The sidecar is the product; the dev IdP, bank, walkthrough, dev tokens and web app are guests that talk ' +
        'to it over HTTP and gRPC. Nothing outside src/demo may import them, so `authz serve` and the sidecar ' +
        'image never load or ship demo code.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/demo/' },
      to: { path: ['^src/demo/', '^web/'] },
    },
    {
      name: 'core-pure',
      comment:
        'The decision core is a pure function of (compiled policy, request facts, verified claims, now): it may ' +
        'use only itself, src/contract and the pure part of src/policy. No authn, transport, logging, metrics, ' +
        'policy file I/O or watching, Node core module or npm package.',
      severity: 'error',
      from: { path: '^src/authz/' },
      to: { pathNot: ['^src/authz/', '^src/contract/', `^src/policy/(?!${POLICY_IO.join('|')})`] },
    },
    {
      name: 'policy-lowest',
      comment:
        'src/policy is the lowest layer: everything above it may use the compiled policy, so it imports nothing ' +
        'of the project outside itself but src/contract, the constants of the documented interfaces (e.g. the ' +
        'identity header names a claim may not be mapped to); npm packages and Node core modules are fine.',
      severity: 'error',
      from: { path: '^src/policy/' },
      to: { pathNot: ['^src/policy/', '^src/contract/', '^node_modules/'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'not-the-entry-point',
      comment:
        'src/cli/main.ts is the executable: it composes the command table and owns the process. Commands sit ' +
        'under it and are loaded by it, never the other way round; shared parsing lives in src/args.',
      severity: 'error',
      from: {},
      to: { path: '^src/cli/main\\.ts$' },
    },
    {
      name: 'layers-args',
      comment:
        'src/args (argument parsing, UsageError) sits below both the CLI and the policy tool commands, so it cannot ' +
        "import either of them, nor the commands' interface, the server or the Envoy adapter.",
      severity: 'error',
      from: { path: '^src/args/' },
      to: { path: '^src/(cli|command|policy-tools|server|envoy)/' },
    },
    {
      name: 'layers-command',
      comment:
        'src/command (what a command is and what it receives: Command, CommandTable, CommandContext, CommandIo) ' +
        'sits below the CLI, the policy tools and the demo, which all implement it: it may use only itself and ' +
        'src/args (the Environment type), so a command table drags nothing else in.',
      severity: 'error',
      from: { path: '^src/command/' },
      to: { pathNot: ['^src/command/', '^src/args/'] },
    },
    {
      name: 'layers-policy-tools',
      comment:
        'The policy tool commands (check-policy, explain, test, diff) run under the CLI beside the server: they ' +
        'share the core and src/args, not the CLI, the server or the gRPC adapter.',
      severity: 'error',
      from: { path: '^src/policy-tools/' },
      to: { path: '^src/(cli|server|envoy)/' },
    },
    {
      name: 'layers-authn',
      comment:
        'Authentication (bearer parsing, JWT verification, JWKS fetching) is a library for the adapters: it ' +
        'must not reach up into transport, the server, the commands, logging or metrics.',
      severity: 'error',
      from: { path: '^src/authn/' },
      to: { path: '^src/(envoy|server|policy-tools|cli|log|metrics)/' },
    },
    {
      name: 'layers-tracing',
      comment:
        'Tracing (src/tracing) is an adapter the server and the Envoy adapter are handed: it must not reach ' +
        'up into them, nor into authentication, the commands, logging or metrics.',
      severity: 'error',
      from: { path: '^src/tracing/' },
      to: { path: '^src/(envoy|server|policy-tools|cli|authn|log|metrics)/' },
    },
    {
      name: 'tracing-sdk-only-when-on',
      comment:
        'The OpenTelemetry SDK is loaded only by a process whose OTEL_* variables turn tracing on: only ' +
        'src/tracing/start-tracing.ts imports it, and only serve-command imports that (lazily, with import()); ' +
        'everything else sees the interfaces of src/tracing/check-tracing.ts.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(tracing/start-tracing|cli/serve-command)\\.ts$' },
      to: { path: ['^src/tracing/start-tracing\\.ts$', 'node_modules/@opentelemetry/'] },
    },
    {
      name: 'layers-envoy',
      comment:
        'The Envoy adapter is thin (parse, authorize, answer); the server composes it, not the other way round.',
      severity: 'error',
      from: { path: '^src/envoy/' },
      to: { path: '^src/(server|policy-tools|cli)/' },
    },
    {
      name: 'layers-client',
      comment:
        'src/client (challenge parser, step-up planner) is a library API that clients reuse, shipped to ' +
        'browsers through web/: it may use only itself and src/contract; no Node core module, no npm package.',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { pathNot: ['^src/client/', '^src/contract/'] },
    },
    {
      name: 'layers-contract',
      comment:
        'src/contract holds the constants both wings share (identity header names): it is a leaf that imports ' +
        'nothing, so importing it never drags anything else into either wing.',
      severity: 'error',
      from: { path: '^src/contract/' },
      to: { pathNot: '^src/contract/' },
    },
    {
      name: 'web-uses-libraries',
      comment:
        'The browser app is a guest like any other client: of src/ it may use only the libraries meant for ' +
        'clients (src/client, src/http, src/contract), never sidecar internals or the server-side demo.',
      severity: 'error',
      from: { path: '^web/' },
      to: { path: '^src/', pathNot: '^src/(client|http|contract)/' },
    },
    {
      name: 'web-client-entry',
      comment:
        'The browser app, the demo and the policy tools use the client library as any client would, through ' +
        'its entry point (src/client/index.ts), so the library may rearrange its modules without breaking its users.',
      severity: 'error',
      from: { path: ['^web/', '^src/'], pathNot: '^src/client/' },
      to: { path: '^src/client/', pathNot: '^src/client/index\\.ts$' },
    },
    {
      name: 'product-not-tests',
      comment:
        'The sidecar, the demo and the web app never load the test kit, the bench or the fault suite: what ships ' +
        'is the product alone.',
      severity: 'error',
      from: { path: ['^src/', '^web/'] },
      to: { path: ['^test/', '^bench/', '^faults/'] },
    },
    {
      name: 'harness-is-the-kit',
      comment:
        'The bench and the fault suite start processes, key servers, Envoy and tokens with the one test kit ' +
        '(test/kit), never with the helpers or the tests of a test project.',
      severity: 'error',
      from: { path: ['^bench/', '^faults/'] },
      to: { path: '^test/', pathNot: ['^test/kit/', '^test/fixtures/'] },
    },
    {
      name: 'kit-below-tests',
      comment: 'test/kit serves every test project, the bench and the fault suite; it imports none of them.',
      severity: 'error',
      from: { path: '^test/kit/' },
      to: { path: ['^test/(?!kit/|fixtures/)', '^bench/', '^faults/'] },
    },
    {
      name: 'no-circular',
      comment:
        'A cycle means two modules can only be understood, tested and loaded together; split out what they share.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to no file fails at run time (or is a typo in a type-only import).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
  },
};
