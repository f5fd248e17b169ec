import { decodeJwt } from 'jose';
import { discoverTokenEndpoint, MFA_OTP_GRANT, requestToken, type TokenResult } from './token-client.js';
import { planStepUp, type StepUpRequest } from '../../client/step-up-plan.js';

/** Everything the walkthrough talks to, and how it shows its steps. */
export interface WalkthroughOptions {
  /** The API behind Envoy, e.g. `http://127.0.0.1:8000`. */
  readonly api: string;
  /** The identity provider's issuer, e.g. `http://127.0.0.1:9000` (its token endpoint is discovered). */
  readonly issuer: string;
  readonly audience: string;
  readonly username: string;
  readonly password: string;
  /** Supplies the one-time code of the second factor for a pending MFA transaction. */
  readonly secondFactor: (mfaToken: string) => Promise<string>;
  readonly print: (line: string) => void;
}

/** What the reference scenario's app asks for at its ordinary, password-only login. */
const SIGN_IN_SCOPE = 'openid view:balance';

interface ApiAnswer {
  readonly status: number;
  readonly challenge: string | null;
  readonly body: string;
}

/**
 * Replays the reference scenario's eight-step workflow against Envoy, reacting to what the server says
 * rather than to hard-coded knowledge: the step-up request is built from the `WWW-Authenticate` challenge
 * (the challenged scope, or `acr_values` / `max_age`). Returns whether the transfer went through.
 */
export async function runStepUpWalkthrough(options: WalkthroughOptions): Promise<boolean> {
  const { api, print } = options;
  const tokenEndpoint = await discoverTokenEndpoint(options.issuer);
  const transferBody = { to: 'bob', amount: 25 };

  print(`1. Log in to ${options.issuer} as ${options.username} with a password, asking for view:balance`);
  const login = await obtainToken(options, tokenEndpoint, { scope: SIGN_IN_SCOPE });
  if (login === undefined) return false;

  print(`2. GET ${api}/balance with that token`);
  const before = await callApi(api, 'GET', '/balance', login);
  print(`   <- ${before.status} ${before.body}`);
  if (before.status !== 200) {
    print('3. The API did not send the balance: see its answer above.');
    return false;
  }
  print('3. The API validated the token and sent the balance.');

  print(`4. POST ${api}/transfer ${JSON.stringify(transferBody)} with the same token`);
  const refused = await callApi(api, 'POST', '/transfer', login, transferBody);
  print(`   <- ${refused.status} WWW-Authenticate: ${refused.challenge ?? '(none)'}`);
  if (refused.status === 201) {
    print('   The transfer went through without a step-up: nothing more to show.');
    return true;
  }

  print('5. The API refused. Reading its challenge (RFC 9110 / RFC 6750 / RFC 9470):');
  const stepUp = stepUpFor(refused, String(decodeJwt(login)['scope'] ?? ''), print);
  if (stepUp === undefined) return false;

  const asked = [`scope "${stepUp.scope}"`];
  if (stepUp.acrValues !== undefined) asked.push(`acr_values "${stepUp.acrValues}"`);
  if (stepUp.maxAge !== undefined) asked.push(`max_age ${stepUp.maxAge}`);
  print(`6. Back to the identity provider for exactly ${asked.join(', ')}`);
  const stronger = await obtainToken(options, tokenEndpoint, stepUp);
  if (stronger === undefined) return false;

  print(`7. POST ${api}/transfer again with the new token`);
  const done = await callApi(api, 'POST', '/transfer', stronger, transferBody);
  print(`   <- ${done.status} ${done.body}`);
  if (done.status !== 201) return false;

  print('8. The API validated the new token and made the transfer. The balance, with the first token:');
  const after = await callApi(api, 'GET', '/balance', login);
  print(`   <- ${after.status} ${after.body}`);
  const moved = balanceOf(before.body) - balanceOf(after.body);
  print(
    `   ${options.username}'s balance moved by ${moved} (from ${balanceOf(before.body)} to ${balanceOf(after.body)}).`,
  );
  return true;
}

/**
 * Reads the challenge and says, in plain words, what the client will ask for; undefined if it cannot help.
 * @param heldScope the scope of the token that was refused: kept when only the login must be stronger.
 */
function stepUpFor(
  answer: ApiAnswer,
  heldScope: string,
  print: (line: string) => void,
): StepUpRequest | undefined {
  const plan = planStepUp(answer, heldScope);
  if (plan.kind === 'give_up') {
    print(`   ${plan.explanation} Giving up.`);
    return undefined;
  }
  const { error, errorDescription } = plan.challenge;
  print(`   error="${error ?? ''}"${errorDescription ? `: ${errorDescription}` : ''}`);
  if (plan.kind === 'scope') {
    print(`   The token lacks scope ${plan.request.scope ?? ''}: a new token is needed for it.`);
    return plan.request;
  }
  if (plan.kind === 'authentication') {
    print('   The login is too weak or too old for this operation: a fresh, stronger login is needed.');
    return plan.request;
  }
  print(`   Nothing a step-up can fix (status ${answer.status}); giving up.`);
  return undefined;
}

/** Logs in (password grant) and completes MFA if the identity provider demands it. */
async function obtainToken(options: WalkthroughOptions, tokenEndpoint: URL, request: StepUpRequest) {
  const { print } = options;
  let result: TokenResult = await requestToken(tokenEndpoint, {
    grant_type: 'password',
    username: options.username,
    password: options.password,
    audience: options.audience,
    scope: request.scope ?? SIGN_IN_SCOPE,
    ...(request.acrValues === undefined ? {} : { acr_values: request.acrValues }),
    ...(request.maxAge === undefined ? {} : { max_age: request.maxAge }),
  });
  if (result.kind === 'mfa_required') {
    print(`   <- mfa_required: ${result.description || 'a second factor is needed'}`);
    const otp = await options.secondFactor(result.mfaToken);
    print('   -> one-time code entered; completing multi-factor authentication');
    result = await requestToken(tokenEndpoint, {
      grant_type: MFA_OTP_GRANT,
      mfa_token: result.mfaToken,
      otp,
    });
  }
  if (result.kind !== 'token') {
    const why =
      result.kind === 'refused' ? `${result.error} ${result.description}` : 'MFA was required again';
    print(`   <- the identity provider refused: ${why}`);
    return undefined;
  }
  print(`   <- access token: ${describeToken(result.accessToken)}`);
  return result.accessToken;
}

/** The claims a person watching the demo cares about; never the token itself. */
function describeToken(token: string): string {
  const claims = decodeJwt(token);
  const amr = Array.isArray(claims['amr']) ? (claims['amr'] as unknown[]).join(',') : '-';
  return `sub=${String(claims.sub)} scope="${String(claims['scope'] ?? '')}" acr=${String(claims['acr'] ?? '-')} amr=${amr}`;
}

async function callApi(
  api: string,
  method: string,
  path: string,
  token: string,
  body?: object,
): Promise<ApiAnswer> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    body: (await response.text()).slice(0, 500),
  };
}

function balanceOf(body: string): number {
  const balance = (JSON.parse(body) as { balance?: unknown }).balance;
  return typeof balance === 'number' ? balance : NaN;
}
