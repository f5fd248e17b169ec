import { parseWwwAuthenticate, type DpopKey } from '../../src/client/index.js';

/** A request to send with a DPoP proof. */
export interface DpopRequest {
  readonly method: string;
  /** Absolute: the proof's `htu` is this without query and fragment (RFC 9449 section 4.2). */
  readonly url: URL;
  /** Headers besides `DPoP`, which this adds. */
  readonly headers: Readonly<Record<string, string>>;
  /** The access token the request presents, hashed into the proof's `ath`; absent at the token endpoint. */
  readonly accessToken?: string;
  /** The rest of the fetch options: body, credentials, timeouts. Made again for a retry (a body is read once). */
  readonly init: () => Omit<RequestInit, 'method' | 'headers'>;
}

const MAX_NONCE_CHARS = 1024; // a nonce is an opaque token of a few dozen characters (RFC 9449 section 8)
const NONCE = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // NQCHAR (RFC 9449 section 8)
const MAX_ERROR_BODY_CHARS = 16 * 1024; // an OAuth error answer is a few hundred bytes

/**
 * Sends requests with a fresh DPoP proof (RFC 9449 section 4) and keeps each server's latest `DPoP-Nonce`
 * (section 8.2: any answer may carry a new one), by origin: the identity provider and the API issue their
 * own. A request refused with `use_dpop_nonce` (400 from a token endpoint, section 8; 401 from a resource
 * server, section 9) is sent once more with the nonce that came with the refusal, never more.
 */
export class DpopFetch {
  private readonly nonces = new Map<string, string>();

  constructor(
    private readonly key: DpopKey,
    private readonly send: typeof fetch = (input, init) => fetch(input, init),
  ) {}

  /** The RFC 7638 thumbprint of the key every proof is signed with. */
  get thumbprint(): string {
    return this.key.thumbprint;
  }

  /** The latest nonce `origin` gave, if any (for tests and the page). */
  nonceFor(origin: string): string | undefined {
    return this.nonces.get(origin);
  }

  async fetch(request: DpopRequest): Promise<Response> {
    const origin = request.url.origin;
    const before = this.nonces.get(origin);
    const response = await this.sendOnce(request, before);
    const nonce = this.nonces.get(origin);
    if (nonce === undefined || nonce === before || !(await asksForNonce(response))) return response;
    // Only this one retry: a server that refuses its own fresh nonce would otherwise be asked forever.
    return this.sendOnce(request, nonce);
  }

  private async sendOnce(request: DpopRequest, nonce: string | undefined): Promise<Response> {
    const proof = await this.key.proof({
      method: request.method,
      url: request.url,
      ...(request.accessToken === undefined ? {} : { accessToken: request.accessToken }),
      ...(nonce === undefined ? {} : { nonce }),
    });
    const response = await this.send(request.url, {
      ...request.init(),
      method: request.method,
      headers: { ...request.headers, dpop: proof },
    });
    const offered = response.headers.get('dpop-nonce');
    if (offered !== null && offered.length <= MAX_NONCE_CHARS && NONCE.test(offered))
      this.nonces.set(request.url.origin, offered);
    return response;
  }
}

/**
 * Whether an answer refuses the proof for want of a (fresh) nonce: a 401 whose `DPoP` challenge says
 * `use_dpop_nonce` (RFC 9449 section 9), or a 400 whose OAuth error says it (section 8). The body is read
 * from a clone, so the caller can still read it.
 */
export async function asksForNonce(response: Response): Promise<boolean> {
  if (response.status === 401) {
    const parsed = parseWwwAuthenticate(response.headers.get('www-authenticate') ?? '');
    return (
      parsed.ok &&
      parsed.challenges.some(
        (challenge) =>
          challenge.scheme.toLowerCase() === 'dpop' && challenge.params.get('error') === 'use_dpop_nonce',
      )
    );
  }
  if (response.status !== 400) return false;
  try {
    const text = await response.clone().text();
    if (text.length > MAX_ERROR_BODY_CHARS) return false;
    const body = JSON.parse(text) as unknown;
    return (
      typeof body === 'object' &&
      body !== null &&
      (body as Record<string, unknown>)['error'] === 'use_dpop_nonce'
    );
  } catch {
    return false;
  }
}
