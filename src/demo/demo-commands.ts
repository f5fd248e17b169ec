import type { Command, CommandTable } from '../command/command.js';
import { BANK_DEFAULTS } from './bank/bank-config.js';
import { DEV_IDP_DEFAULTS } from './idp/dev-idp-config.js';
import { DEFAULT_REDIRECT_URIS } from './idp/protocol-values.js';
import { STATEMENTS_DEFAULTS } from './statements/statements-config.js';
import { DEMO_CLIENT_DEFAULTS } from './walkthrough/demo-client-config.js';

/**
 * The demo's commands, a guest of the sidecar's CLI: `src/cli/guest-commands.ts` imports this module by a
 * computed URL when a command is not one of the sidecar's, and finds nothing in the sidecar image, which
 * has no demo code. Like the sidecar's table, each `run` imports its implementation only when called.
 */
export const commandTable: CommandTable = Object.freeze({
  title: 'demo commands (development only; not in the sidecar image)',
  commands: Object.freeze<readonly Command[]>([
    {
      name: 'bank',
      usage: ['[--listen HOST:PORT] [--app-dir DIR] [--app-issuer URL] [--log-level LEVEL]'],
      summary: [
        `the stub banking upstream (default listen ${BANK_DEFAULTS.listen}; env BANK_LISTEN) and its`,
        'web app under /app/ (the built dist/web by default; env BANK_APP_DIR), signing in with the',
        `identity provider --app-issuer (default ${BANK_DEFAULTS.appIssuer}; env BANK_APP_ISSUER)`,
      ],
      run: async (argv, context) => (await import('./bank/bank-command.js')).bankCommand(argv, context),
    },
    {
      name: 'statements',
      usage: ['[--listen HOST:PORT] [--log-level LEVEL]'],
      summary: [
        `the stub statements upstream (default listen ${STATEMENTS_DEFAULTS.listen}; env STATEMENTS_LISTEN),`,
        'the second service behind envoy/gateway.yaml: GET /balance, /statements, /statements/{id}',
      ],
      run: async (argv, context) =>
        (await import('./statements/statements-command.js')).statementsCommand(argv, context),
    },
    {
      name: 'dev-token',
      usage: [
        '--scope "view:balance transfer:funds" [--sub alice] [--ttl 10m]',
        '[--issuer URL] [--audience AUD] [--acr urn:bank:mfa] [--amr "pwd mfa"] [--auth-age 0s]',
        '[--bind-cert FILE] [--dpop-jkt THUMBPRINT]',
      ],
      summary: [
        'DEVELOPMENT ONLY: prints a token signed with a local key kept in .authz-dev/ (env AUTHZ_DEV_DIR);',
        '--acr/--amr/--auth-age set the login claims (auth_time = now - auth-age); --bind-cert binds it to',
        'the PEM client certificate in FILE (cnf["x5t#S256"], RFC 8705; the demo makes some in',
        '.authz-dev/tls/), --dpop-jkt to a DPoP key by its RFC 7638 thumbprint (cnf.jkt, RFC 9449)',
      ],
      run: async (argv, context) =>
        (await import('./dev-token/dev-token-command.js')).devTokenCommand(argv, context),
    },
    {
      name: 'dev-idp',
      usage: [
        '[--listen HOST:PORT] [--issuer URL] [--audience AUD] [--redirect-uri URL]...',
        '[--log-level LEVEL]',
      ],
      summary: [
        'DEVELOPMENT ONLY: an OAuth 2.0 / OIDC identity provider for the step-up demo (default listen',
        `${DEV_IDP_DEFAULTS.listen}); users alice / alice-password and bob / bob-password; MFA codes`,
        'are printed in its log; the browser app (client_id bank-spa) signs in at /authorize with PKCE,',
        'codes sent to --redirect-uri (repeatable, exact match; default',
        `${DEFAULT_REDIRECT_URIS.join(' and ')})`,
      ],
      run: async (argv, context) => (await import('./idp/dev-idp-command.js')).devIdpCommand(argv, context),
    },
    {
      name: 'demo-client',
      usage: [
        '[--api URL] [--issuer URL] [--audience AUD] [--user alice] [--password PW]',
        '[--otp auto|prompt]',
      ],
      summary: [
        `replays the step-up scenario against Envoy (default ${DEMO_CLIENT_DEFAULTS.api}) and the dev IdP`,
        `(default ${DEMO_CLIENT_DEFAULTS.issuer}), printing each step; --otp prompt asks for the code the IdP`,
        "printed, auto reads it from the IdP's simulated authenticator (default: prompt on a terminal)",
      ],
      run: async (argv, context) =>
        (await import('./walkthrough/demo-client-command.js')).demoClientCommand(argv, context),
    },
  ]),
});
