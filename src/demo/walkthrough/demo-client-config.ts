import { parseFlags } from '../../args/parse-command-args.js';
import { UsageError } from '../../args/usage-error.js';
import { DEV_AUDIENCE } from '../dev-token/dev-keys.js';

/** Defaults of `authz demo-client`: the addresses `npm run demo` and docker-compose.yml use. */
export const DEMO_CLIENT_DEFAULTS = Object.freeze({
  /** Envoy's listener, in front of the bank. */
  api: 'http://127.0.0.1:8000',
  /** The dev IdP. */
  issuer: 'http://127.0.0.1:9000',
  user: 'alice',
});

export interface DemoClientConfig {
  readonly api: string;
  readonly issuer: string;
  readonly audience: string;
  readonly username: string;
  readonly password: string;
  /** `auto`: read the code from the dev IdP's simulated authenticator; `prompt`: ask the person. */
  readonly otp: 'auto' | 'prompt';
}

/**
 * `authz demo-client [--api URL] [--issuer URL] [--audience AUD] [--user NAME] [--password PW]
 * [--otp auto|prompt]`; `--otp` defaults to `prompt` when a person is at the terminal (`interactive`).
 *
 * @throws UsageError naming the flag that cannot be used.
 */
export function demoClientConfig(argv: readonly string[], interactive: boolean): DemoClientConfig {
  const values = parseFlags(argv, {
    api: { type: 'string', default: DEMO_CLIENT_DEFAULTS.api },
    issuer: { type: 'string', default: DEMO_CLIENT_DEFAULTS.issuer },
    audience: { type: 'string', default: DEV_AUDIENCE },
    user: { type: 'string', default: DEMO_CLIENT_DEFAULTS.user },
    password: { type: 'string' },
    otp: { type: 'string', default: interactive ? 'prompt' : 'auto' },
  });
  for (const flag of ['api', 'issuer'] as const) {
    const value = String(values[flag]);
    if (!/^https?:\/\/[^\s]+$/.test(value))
      throw new UsageError(`--${flag}: "${value}" is not an http(s) URL`);
  }
  const otp = String(values['otp']);
  if (otp !== 'auto' && otp !== 'prompt') throw new UsageError(`--otp: "${otp}" is not auto or prompt`);
  const username = String(values['user']);
  return Object.freeze({
    api: String(values['api']).replace(/\/$/, ''),
    issuer: String(values['issuer']),
    audience: String(values['audience']),
    username,
    // The demo users' passwords are public (docs/demo.md): alice-password, bob-password.
    password: (values['password'] as string | undefined) ?? `${username}-password`,
    otp,
  });
}
