#!/usr/bin/env node
import type { Logger } from 'pino';
import { startBank } from '../demo/bank/bank-server.js';
import {
  BUILT_APP_DIR,
  loadWebApp,
  WEB_APP_CLIENT_ID,
  WEB_APP_SIGN_IN_SCOPE,
  WebAppError,
  type WebAppFile,
} from '../demo/bank/web-app.js';
import { DEV_AUDIENCE, ensureDevKeys } from '../demo/dev-token/dev-keys.js';
import { mintDevToken } from '../demo/dev-token/mint-dev-token.js';
import { createLogger } from '../log/create-logger.js';
import { PolicyError } from '../policy/policy-error.js';
import { startAuthzServer } from '../server/authz-server.js';
import {
  bankConfig,
  type BankConfig,
  COMMAND_DEFAULTS,
  demoClientConfig,
  devIdpConfig,
  devTokenConfig,
  serveConfig,
} from './command-config.js';
import { startDevIdp } from '../demo/idp/dev-idp-server.js';
import { createAuthzMetrics } from '../metrics/authz-metrics.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { runStepUpWalkthrough } from '../demo/walkthrough/step-up-walkthrough.js';
import { otpSource } from '../demo/walkthrough/otp-source.js';
import { UsageError } from '../args/usage-error.js';
import { processIo } from '../ops/command-io.js';
import { checkPolicyCommand } from '../ops/check-policy-command.js';
import { explainCommand } from '../ops/explain-command.js';
import { testCommand } from '../ops/test-command.js';
import { diffCommand } from '../ops/diff-command.js';

const USAGE = `usage: authz <command> [options]

commands:
  serve --policy FILE [--listen HOST:PORT] [--log-level LEVEL] [--metrics-listen HOST:PORT]
        [--log-allowed-sample RATE] [--drain-delay DURATION] [--shutdown-grace DURATION]
        the ext_authz gRPC server and gRPC health (default listen ${COMMAND_DEFAULTS.authzListen};
        env AUTHZ_POLICY, AUTHZ_LISTEN, AUTHZ_LOG_LEVEL, AUTHZ_METRICS_LISTEN, AUTHZ_LOG_ALLOWED_SAMPLE,
        AUTHZ_DRAIN_DELAY, AUTHZ_SHUTDOWN_GRACE); reloads the policy when the file changes or on SIGHUP
  bank [--listen HOST:PORT] [--app-dir DIR] [--app-issuer URL]
        the stub banking upstream (default listen ${COMMAND_DEFAULTS.bankListen}; env BANK_LISTEN) and its
        web app under /app/ (the built dist/web by default; env BANK_APP_DIR), signing in with the
        identity provider --app-issuer (default ${COMMAND_DEFAULTS.appIssuer}; env BANK_APP_ISSUER)
  dev-token --scope "view:balance transfer:funds" [--sub alice] [--ttl 10m] [--issuer URL] [--audience AUD]
            [--acr urn:bank:mfa] [--amr "pwd mfa"] [--auth-age 0s]
        DEVELOPMENT ONLY: prints a token signed with a local key kept in .authz-dev/ (env AUTHZ_DEV_DIR);
        --acr/--amr/--auth-age set the login claims (auth_time = now - auth-age)
  check-policy FILE [--json] [--strict]
        validates a policy: errors with file:line:column (exit 1); warnings for shadowed and duplicate
        routes and, with known_scopes, unused and unknown scopes (exit 1 on warnings only with --strict)
  explain --policy FILE --method METHOD --path PATH [--token JWT | --claims JSON] [--now ISO] [--json]
        which route matches and why, what it requires, what the token has, the decision and the exact
        response; --token is verified with the policy's keys, --claims are taken as given (not verified)
  test FILE...
        runs policy test files (docs/policy-tests.md): a table of passes and failures, exit 1 on a failure
  diff OLD NEW [--json]
        the example requests whose outcome changes between two policy files, per token profile;
        exit 0 no change, 1 changes, 2 errors
  dev-idp [--listen HOST:PORT] [--issuer URL] [--audience AUD] [--redirect-uri URL]...
        DEVELOPMENT ONLY: an OAuth 2.0 / OIDC identity provider for the step-up demo (default listen
        ${COMMAND_DEFAULTS.devIdpListen}); users alice / alice-password and bob / bob-password; MFA codes
        are printed in its log; the browser app (client_id bank-spa) signs in at /authorize with PKCE,
        codes sent to --redirect-uri (repeatable, exact match; default
        http://127.0.0.1:8000/app/callback.html and http://localhost:8000/app/callback.html)
  demo-client [--api URL] [--issuer URL] [--user alice] [--password PW] [--otp auto|prompt]
        replays the step-up scenario against Envoy (default http://127.0.0.1:8000) and the dev IdP
        (default http://127.0.0.1:9000), printing each step; --otp prompt asks for the code the IdP
        printed, auto reads it from the IdP's simulated authenticator (default: prompt on a terminal)
`;

/**
 * The bank's web app: the folder named on the command line must hold a built app; without one, the
 * built `dist/web` is served when present, and the bank runs API-only (with a warning) when not.
 */
async function bankWebApp(
  config: BankConfig,
  logger: Logger,
): Promise<((path: string) => WebAppFile | undefined) | undefined> {
  const settings = {
    issuer: config.appIssuer,
    clientId: WEB_APP_CLIENT_ID,
    audience: DEV_AUDIENCE,
    scope: WEB_APP_SIGN_IN_SCOPE,
  };
  if (config.appDir !== undefined) return loadWebApp(config.appDir, settings);
  try {
    return await loadWebApp(BUILT_APP_DIR, settings);
  } catch (error) {
    if (!(error instanceof WebAppError)) throw error;
    logger.warn({ event: 'web_app_missing', dir: BUILT_APP_DIR }, `no web app served: ${error.message}`);
    return undefined;
  }
}

/** Stops a long-running command gracefully on SIGTERM or SIGINT. */
function onShutdown(close: () => Promise<void>): void {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function run(argv: readonly string[]): Promise<void> {
  const [command, ...rest] = argv;
  const env = process.env;
  switch (command) {
    case 'serve': {
      const config = serveConfig(rest, env);
      const logger = createLogger({ level: config.logLevel });
      const metrics = config.metricsListen === undefined ? undefined : createAuthzMetrics();
      const server = await startAuthzServer({
        policyFile: config.policyFile,
        listen: config.listen.text,
        logger,
        logAllowedSample: config.logAllowedSample,
        ...(metrics === undefined ? {} : { metrics }),
      });
      const metricsServer =
        metrics === undefined || config.metricsListen === undefined
          ? undefined
          : await startMetricsServer({
              host: config.metricsListen.host,
              port: config.metricsListen.port,
              registry: metrics.registry,
              logger,
            });
      process.on('SIGHUP', () => void server.reload());
      onShutdown(async () => {
        await server.close({ drainMs: config.drainDelayMs, graceMs: config.shutdownGraceMs });
        await metricsServer?.close();
      });
      return;
    }
    case 'bank': {
      const config = bankConfig(rest, env);
      const logger = createLogger({ level: config.logLevel });
      const app = await bankWebApp(config, logger);
      const bank = await startBank({
        host: config.listen.host,
        port: config.listen.port,
        logger,
        ...(app === undefined ? {} : { app }),
      });
      onShutdown(() => bank.close());
      return;
    }
    case 'dev-token': {
      const config = devTokenConfig(rest, env);
      const keys = await ensureDevKeys(config.devDir);
      process.stdout.write((await mintDevToken(keys, config)) + '\n');
      return;
    }
    case 'check-policy': {
      process.exitCode = await checkPolicyCommand(rest, processIo);
      return;
    }
    case 'explain': {
      process.exitCode = await explainCommand(rest, processIo);
      return;
    }
    case 'test': {
      process.exitCode = await testCommand(rest, processIo);
      return;
    }
    case 'diff': {
      process.exitCode = await diffCommand(rest, processIo);
      return;
    }
    case 'dev-idp': {
      const config = devIdpConfig(rest, env);
      const logger = createLogger({ level: config.logLevel });
      const idp = await startDevIdp({
        host: config.listen.host,
        port: config.listen.port,
        audience: config.audience,
        logger,
        ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
        ...(config.redirectUris === undefined ? {} : { redirectUris: config.redirectUris }),
      });
      onShutdown(() => idp.close());
      return;
    }
    case 'demo-client': {
      const config = demoClientConfig(rest, process.stdin.isTTY === true);
      const ok = await runStepUpWalkthrough({
        ...config,
        secondFactor: otpSource(config.otp, config.issuer),
        print: (line) => process.stdout.write(line + '\n'),
      });
      process.exitCode = ok ? 0 : 1;
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

run(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`authz: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (error instanceof PolicyError) {
    process.stderr.write(`authz: the policy cannot be used (${error.code}):\n${error.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`authz: ${(error as Error).message ?? String(error)}\n`);
  process.exit(1);
});
