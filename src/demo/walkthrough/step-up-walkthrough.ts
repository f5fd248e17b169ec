import { decodeJwt } from 'jose';
import { ApiClient, sendToApi, type ApiAnswer, type HeldToken } from './api-client.js';
import { discoverTokenEndpoint, MFA_OTP_GRANT, requestToken, type TokenResult } from './token-client.js';
import { createDpopKey, type DpopKey, planStepUp, type StepUpRequest } from '../../client/index.js';

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

/**
 * Replays the reference scenario's eight-step workflow against Envoy, reacting to what the server says
 * rather than to hard-coded knowledge: the step-up request is built from the `WWW-Authenticate` challenge
 * (the challenged scope, or `acr_values` / `max_age`), under `Bearer` or `DPoP`. Every token is asked for
 * with a DPoP proof of one key this run makes (RFC 9449 section 5) and every call carries a fresh proof.
 * A ninth step replays the transfer token from another client, without that key. Returns whether the
 * transfer went through and the stolen token was refused.
 */
export async function runStepUpWalkthrough(options: WalkthroughOptions): Promise<boolean> {
  const { api, print } = options;
  const tokenEndpoint = await discoverTokenEndpoint(options.issuer);
  const transferBody = { to: 'bob', amount: 25 };
  // One key per run: WebCrypto keeps its private half, which no code (this one included) can export.
  const key = await createDpopKey();
  const client = new ApiClient(api, key);
  print(
    `0. This client makes its DPoP key (RFC 9449): P-256, private half not extractable, thumbprint ${key.thumbprint}`,
  );

  print(`1. Log in to ${options.issuer} as ${options.username} with a password, asking for view:balance`);
  const login = await obtainToken(options, tokenEndpoint, key, { scope: SIGN_IN_SCOPE });
  if (login === undefined) return false;

  print(`2. GET ${api}/balance with that token (${how(login)})`);
  const before = await client.call('GET', '/balance', login);
  print(`   <- ${before.status} ${before.body}`);
  if (before.status !== 200) {
    print('3. The API did not send the balance: see its answer above.');
    return false;
  }
  print('3. The API validated the token and sent the balance.');

  print(`4. POST ${api}/transfer ${JSON.stringify(transferBody)} with the same token`);
  const refused = await client.call('POST', '/transfer', login, transferBody);
  print(`   <- ${refused.status} WWW-Authenticate: ${refused.challenge ?? '(none)'}`);
  let transferToken = login;
  if (refused.status === 201) {
    print('   The transfer went through without a step-up.');
  } else {
    print('5. The API refused. Reading its challenge (RFC 9110 / RFC 6750 / RFC 9449 / RFC 9470):');
    const stepUp = stepUpFor(refused, String(decodeJwt(login.accessToken)['scope'] ?? ''), print);
    if (stepUp === undefined) return false;

    const asked = [`scope "${stepUp.scope}"`];
    if (stepUp.acrValues !== undefined) asked.push(`acr_values "${stepUp.acrValues}"`);
    if (stepUp.maxAge !== undefined) asked.push(`max_age ${stepUp.maxAge}`);
    print(`6. Back to the identity provider for exactly ${asked.join(', ')}`);
    const stronger = await obtainToken(options, tokenEndpoint, key, stepUp);
    if (stronger === undefined) return false;

    print(`7. POST ${api}/transfer again with the new token (${how(stronger)})`);
    const done = await client.call('POST', '/transfer', stronger, transferBody);
    print(`   <- ${done.status} ${done.body}`);
    if (done.status !== 201) return false;
    transferToken = stronger;
  }

  print('8. The API validated the new token and made the transfer. The balance, with the first token:');
  const after = await client.call('GET', '/balance', login);
  print(`   <- ${after.status} ${after.body}`);
  const moved = balanceOf(before.body) - balanceOf(after.body);
  print(
    `   ${options.username}'s balance moved by ${moved} (from ${balanceOf(before.body)} to ${balanceOf(after.body)}).`,
  );

  return replayStolenToken(options, client, { stolen: transferToken, login }, transferBody);
}

/**
 * Step 9: the transfer token leaks (a log, a proxy, a browser extension) and another client replays it,
 * first as a plain bearer token, then with a proof of its own key. A DPoP-bound token is never taken as a
 * bearer token (RFC 9449 section 7.2) and a proof from any other key does not match its `cnf.jkt`, so
 * both are refused and the balance stays as it was (read with the sign-in token, which has view:balance).
 * Returns whether both were refused and the balance did not move.
 */
async function replayStolenToken(
  options: WalkthroughOptions,
  client: ApiClient,
  tokens: { readonly stolen: HeldToken; readonly login: HeldToken },
  transferBody: object,
): Promise<boolean> {
  const { api, print } = options;
  const { stolen, login } = tokens;
  const boundTo = jktOf(stolen.accessToken);
  print('9. The stolen transfer token: another client, without the key, replays it');
  if (boundTo === undefined) {
    print('   The transfer token is not DPoP-bound: whoever holds it can use it. Nothing to show.');
    return true;
  }
  print(`   The token is DPoP-bound: cnf.jkt=${boundTo}, this client's key.`);
  const before = await client.call('GET', '/balance', login);
  print(`   Balance first, by the rightful client: <- ${before.status} ${before.body}`);

  print(`   a. POST ${api}/transfer with "Authorization: Bearer <stolen token>" and no proof`);
  const asBearer = (
    await sendToApi(
      `${api}/transfer`,
      'POST',
      { authorization: `Bearer ${stolen.accessToken}` },
      transferBody,
    )
  ).answer;
  showRefusal(asBearer, print);

  const thiefKey = await createDpopKey();
  const thief = new ApiClient(api, thiefKey);
  print(
    `   b. POST ${api}/transfer with "Authorization: DPoP <stolen token>" and a fresh proof from the ` +
      `thief's own key (thumbprint ${thiefKey.thumbprint})`,
  );
  const withOtherKey = await thief.call('POST', '/transfer', stolen, transferBody);
  showRefusal(withOtherKey, print);

  const after = await client.call('GET', '/balance', login);
  print(`   Balance again, by the rightful client: <- ${after.status} ${after.body}`);
  const refused = !isSuccess(asBearer.status) && !isSuccess(withOtherKey.status);
  const unchanged =
    before.status === 200 && after.status === 200 && balanceOf(before.body) === balanceOf(after.body);
  print(
    refused && unchanged
      ? `   Both replays refused; the balance is unchanged (${balanceOf(after.body)}): without its key, the token moves no money.`
      : '   The stolen token was accepted: the API does not check the token binding.',
  );
  return refused && unchanged;
}

/** A refusal as the walkthrough prints it: the status and every challenge (the error is in them). */
function showRefusal(answer: ApiAnswer, print: (line: string) => void): void {
  print(`      <- ${answer.status} WWW-Authenticate: ${answer.challenge ?? '(none)'}`);
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
  const { scheme, error, errorDescription } = plan.challenge;
  print(`   ${scheme} error="${error ?? ''}"${errorDescription ? `: ${errorDescription}` : ''}`);
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

/**
 * Logs in (password grant) and completes MFA if the identity provider demands it. Each token request
 * carries a proof of `key`, so the token that comes back is bound to it; for MFA that is the second
 * request, the one answered with the token.
 */
async function obtainToken(
  options: WalkthroughOptions,
  tokenEndpoint: URL,
  key: DpopKey,
  request: StepUpRequest,
): Promise<HeldToken | undefined> {
  const { print } = options;
  let result: TokenResult = await requestToken(
    tokenEndpoint,
    {
      grant_type: 'password',
      username: options.username,
      password: options.password,
      audience: options.audience,
      scope: request.scope ?? SIGN_IN_SCOPE,
      ...(request.acrValues === undefined ? {} : { acr_values: request.acrValues }),
      ...(request.maxAge === undefined ? {} : { max_age: request.maxAge }),
    },
    key,
  );
  if (result.kind === 'mfa_required') {
    print(`   <- mfa_required: ${result.description || 'a second factor is needed'}`);
    const otp = await options.secondFactor(result.mfaToken);
    print('   -> one-time code entered; completing multi-factor authentication');
    result = await requestToken(
      tokenEndpoint,
      { grant_type: MFA_OTP_GRANT, mfa_token: result.mfaToken, otp },
      key,
    );
  }
  if (result.kind !== 'token') {
    const why =
      result.kind === 'refused' ? `${result.error} ${result.description}` : 'MFA was required again';
    print(`   <- the identity provider refused: ${why}`);
    return undefined;
  }
  print(`   <- access token: ${describeToken(result, key)}`);
  return { accessToken: result.accessToken, tokenType: result.tokenType };
}

/** The claims a person watching the demo cares about, and the binding; never the token itself. */
function describeToken(result: Extract<TokenResult, { kind: 'token' }>, key: DpopKey): string {
  const claims = decodeJwt(result.accessToken);
  const amr = Array.isArray(claims['amr']) ? (claims['amr'] as unknown[]).join(',') : '-';
  const jkt = jktOf(result.accessToken);
  const binding =
    jkt === undefined
      ? `token_type=${result.tokenType}, not bound to a key`
      : `token_type=${result.tokenType} cnf.jkt=${jkt}${jkt === key.thumbprint ? " (this client's key)" : ' (ANOTHER key)'}`;
  return `sub=${String(claims.sub)} scope="${String(claims['scope'] ?? '')}" acr=${String(claims['acr'] ?? '-')} amr=${amr} ${binding}`;
}

/** How a token goes to the API, for the step lines. */
function how(token: HeldToken): string {
  return token.tokenType.toLowerCase() === 'dpop'
    ? "Authorization: DPoP, and a fresh DPoP proof of this client's key"
    : 'Authorization: Bearer';
}

/** The `cnf.jkt` claim (RFC 9449 section 6.1) of a token, undefined when it is not DPoP-bound. */
function jktOf(accessToken: string): string | undefined {
  const cnf = decodeJwt(accessToken)['cnf'];
  const jkt = typeof cnf === 'object' && cnf !== null ? (cnf as Record<string, unknown>)['jkt'] : undefined;
  return typeof jkt === 'string' ? jkt : undefined;
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function balanceOf(body: string): number {
  const balance = (JSON.parse(body) as { balance?: unknown }).balance;
  return typeof balance === 'number' ? balance : NaN;
}
