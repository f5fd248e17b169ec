import type { Command, CommandTable } from '../command/command.js';
import { SERVE_DEFAULTS } from './serve-config.js';

/**
 * The product's commands: the sidecar and the tools for people editing its policy. Each `run` imports
 * its implementation when called, so `authz serve` loads the server and not the policy tools, and the
 * reverse. (The policy tool commands take the process's output and clock, `context.io`, and nothing else.)
 */
export const SIDECAR_COMMANDS: CommandTable = Object.freeze({
  title: 'commands',
  commands: Object.freeze<readonly Command[]>([
    {
      name: 'serve',
      usage: [
        '--policy FILE|DIR [--listen HOST:PORT] [--log-level LEVEL] [--metrics-listen HOST:PORT]',
        '[--log-allowed-sample RATE] [--drain-delay DURATION] [--shutdown-grace DURATION]',
        '[--workers N|auto] [--dpop-nonce-key FILE] [--allow-policy-errors]',
      ],
      summary: [
        `the ext_authz gRPC server and gRPC health (default listen ${SERVE_DEFAULTS.listen};`,
        'env AUTHZ_POLICY, AUTHZ_LISTEN, AUTHZ_LOG_LEVEL, AUTHZ_METRICS_LISTEN, AUTHZ_LOG_ALLOWED_SAMPLE,',
        'AUTHZ_DRAIN_DELAY, AUTHZ_SHUTDOWN_GRACE, AUTHZ_WORKERS, AUTHZ_DPOP_NONCE_KEY_FILE,',
        'AUTHZ_ALLOW_POLICY_ERRORS); reloads the policy when the file changes or on SIGHUP (DIR: a policy',
        'directory, _gateway.yaml and one file per team, each file reloaded on its own); --workers N runs',
        `N processes on the port (default ${SERVE_DEFAULTS.workers}; auto: one per core); --dpop-nonce-key: the key of DPoP`,
        'server nonces, shared by replicas (32+ bytes); refuses a policy with error-level findings, as the',
        'reload guard does, unless --allow-policy-errors (an emergency escape hatch: docs/policy-checks.md);',
        'traces Checks over OpenTelemetry when the standard OTEL_* variables say so (docs/operations.md)',
      ],
      run: async (argv, context) => (await import('./serve-command.js')).serveCommand(argv, context),
    },
    {
      name: 'check-policy',
      usage: ['FILE|DIR [--json] [--strict] [--offline]'],
      summary: [
        'validates a policy: errors with file:line:column, and risk findings with codes and levels',
        '(docs/policy-checks.md: a public catch-all, report-only everywhere, shadowed routes...); exit 1',
        'on an error or an error-level finding not accepted, on warnings too with --strict; without',
        "known_scopes, route scopes are checked against the issuers' discovery (--offline: not read);",
        'a policy directory: first a verdict per file (owner, services, in force, refused or not admitted);',
        'a refused or not admitted file fails the check',
      ],
      run: async (argv, context) =>
        (await import('../policy-tools/check-policy-command.js')).checkPolicyCommand(argv, context.io),
    },
    {
      name: 'explain',
      usage: [
        '--policy FILE|DIR --method METHOD --path PATH [--host HOST] [--service NAME]',
        '[--token JWT | --claims JSON] [--scheme bearer|dpop] [--dpop-proof] [--client-cert]',
        '[--now ISO] [--json]',
      ],
      summary: [
        'which service and route match and why, what the route requires, what the token has, the decision',
        "and the exact response; the service is chosen by --host, or by --service as Envoy's",
        "context_extensions name it; --token is verified with the policy's keys, --claims are taken as given;",
        "--dpop-proof, --client-cert: the request carries a valid proof of the token's key or certificate;",
        'with a policy directory, the service names its file and owner',
      ],
      run: async (argv, context) =>
        (await import('../policy-tools/explain-command.js')).explainCommand(argv, context.io),
    },
    {
      name: 'test',
      usage: ['FILE|DIR... [--json] [--junit FILE] [--run PATTERN] [--strict]'],
      summary: [
        'runs policy test files (docs/policy-tests.md): a table of passes and failures, exit 1 on a failure;',
        '--json for machines, --junit FILE for CI, --run PATTERN (text or /regex/) to pick cases, --strict',
        'to fail on warnings (a test-token claim no issuer reads); a policy directory DIR runs its',
        '*.test.yaml files',
      ],
      run: async (argv, context) =>
        (await import('../policy-tools/test-command.js')).testCommand(argv, context.io),
    },
    {
      name: 'diff',
      usage: ['OLD NEW [--json]'],
      summary: [
        'the example requests whose outcome changes between two policies (files or directories), per token',
        'profile (and, with services, per host; grouped by owner for a directory); exit 0 no change,',
        '1 changes, 2 errors',
      ],
      run: async (argv, context) =>
        (await import('../policy-tools/diff-command.js')).diffCommand(argv, context.io),
    },
    {
      name: 'owners',
      usage: ['DIR [--prefix PATH]'],
      summary: [
        "a CODEOWNERS listing of a policy directory from its files' owner: one line per file, PREFIX/NAME",
        'OWNER, sorted by name (--prefix: the path of DIR in the repository, default DIR with a leading /);',
        'exit 2 when DIR has no root file or its root does not compile',
      ],
      run: async (argv, context) =>
        (await import('../policy-tools/owners-command.js')).ownersCommand(argv, context.io),
    },
  ]),
});
