import { type DpopKey, parseWwwAuthenticate } from '../../client/index.js';

/** An API answer, as far as the walkthrough shows it. */
export interface ApiAnswer {
  readonly status: number;
  /** Every `WWW-Authenticate` line, joined with ", " as one list (RFC 9110 section 5.3); null when none. */
  readonly challenge: string | null;
  readonly body: string;
}

/** An access token and how it is to be sent: `DPoP` (with a proof of the key it is bound to) or `Bearer`. */
export interface HeldToken {
  readonly accessToken: string;
  readonly tokenType: string;
}

const TIMEOUT_MS = 10_000; // 10 seconds
const MAX_BODY_CHARS = 500; // enough for any answer of the bank; the walkthrough prints it

/**
 * The demo client's calls to the API behind Envoy. A DPoP-bound token goes as `Authorization: DPoP` with a
 * fresh proof of this client's key on every call (RFC 9449 section 7.1), `ath` binding the proof to the
 * token; a Bearer token goes as before. Server nonces (section 8) are followed: the latest `DPoP-Nonce` the
 * API sent goes into the next proof, and a 401 `use_dpop_nonce` is retried once with the nonce it carries.
 */
export class ApiClient {
  /** The latest `DPoP-Nonce` the API sent (section 8.2: any answer may carry a new one). */
  private nonce: string | undefined;

  constructor(
    private readonly api: string,
    private readonly key: DpopKey,
  ) {}

  /** The public key's RFC 7638 thumbprint: what a token bound to this client carries as `cnf.jkt`. */
  get thumbprint(): string {
    return this.key.thumbprint;
  }

  async call(method: string, path: string, token: HeldToken, body?: object): Promise<ApiAnswer> {
    const first = await this.send(method, path, token, body);
    if (!first.nonceAsked) return first.answer;
    return (await this.send(method, path, token, body)).answer;
  }

  private async send(
    method: string,
    path: string,
    token: HeldToken,
    body: object | undefined,
  ): Promise<{ answer: ApiAnswer; nonceAsked: boolean }> {
    const url = `${this.api}${path}`;
    const dpop = token.tokenType.toLowerCase() === 'dpop';
    const proof = dpop
      ? await this.key.proof({
          method,
          url,
          accessToken: token.accessToken,
          ...(this.nonce === undefined ? {} : { nonce: this.nonce }),
        })
      : undefined;
    const response = await sendToApi(
      url,
      method,
      {
        authorization: `${dpop ? 'DPoP' : 'Bearer'} ${token.accessToken}`,
        ...(proof === undefined ? {} : { dpop: proof }),
      },
      body,
    );
    const offered = response.nonce;
    const nonceAsked =
      dpop &&
      response.answer.status === 401 &&
      offered !== null &&
      offered !== this.nonce &&
      asksForNonce(response.answer.challenge);
    if (offered !== null) this.nonce = offered;
    return { answer: response.answer, nonceAsked };
  }
}

/**
 * One request to the API with exactly the headers given: what any client, rightful or not, can send.
 * Network faults throw.
 */
export async function sendToApi(
  url: string,
  method: string,
  headers: Readonly<Record<string, string>>,
  body?: object,
): Promise<{ answer: ApiAnswer; nonce: string | null }> {
  const response = await fetch(url, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: 'error',
  });
  return {
    answer: {
      status: response.status,
      challenge: response.headers.get('www-authenticate'),
      body: (await response.text()).slice(0, MAX_BODY_CHARS),
    },
    nonce: response.headers.get('dpop-nonce'),
  };
}

/** Whether a `DPoP` challenge says `error="use_dpop_nonce"` (RFC 9449 section 8). */
function asksForNonce(challenge: string | null): boolean {
  const parsed = parseWwwAuthenticate(challenge ?? '');
  return (
    parsed.ok &&
    parsed.challenges.some(
      (each) => each.scheme.toLowerCase() === 'dpop' && each.params.get('error') === 'use_dpop_nonce',
    )
  );
}
