import { readBoundedText, type FetchKeySet } from '../authn/read-key-set.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { ScopesSupported } from '../policy/policy-findings.js';

/**
 * How long `authz check-policy` waits for the issuers' discovery documents, all of them together (they
 * are read at the same time). A policy check should not hang on an identity provider that does not answer.
 */
export const SCOPES_SUPPORTED_WAIT_MS = 3000; // 3 seconds

/**
 * Reads `scopes_supported` from the discovery document (OpenID Connect Discovery 1.0 section 3, RFC 8414
 * section 2) of every issuer found by discovery (`discovery: true` or `openid_configuration`), for the
 * check of route scopes when the policy declares no `known_scopes` (`scope_not_advertised`). Only
 * `authz check-policy` calls it: the server never reads scopes from the network, neither at start-up nor
 * per request.
 *
 * Each document is bounded as a key set is (`KEY_SET_LIMITS.maxBytes`), and all of them by `waitMs`
 * together, even if a fetch ignores its signal. A document that cannot be read, names another issuer
 * (section 4.3) or lists no scopes gives the reason instead; issuers with other key sources are left out.
 *
 * @returns by exact `iss`, in the policy's order.
 */
export async function readScopesSupported(
  policy: CompiledPolicy,
  fetchDocument: FetchKeySet,
  waitMs: number = SCOPES_SUPPORTED_WAIT_MS,
): Promise<Map<string, ScopesSupported>> {
  const signal = AbortSignal.timeout(waitMs);
  const late = `no answer within ${waitMs} ms`;
  const timedOut = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new Error(late));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  timedOut.catch(() => undefined); // only raced below: never an unhandled rejection
  const reads = [...policy.issuers.values()].flatMap((issuer) => {
    const source = issuer.keys;
    if (source.kind !== 'discovery') return [];
    const read = Promise.race([
      readScopes(source.metadataUrl, issuer.issuer, fetchDocument, signal),
      timedOut,
    ]);
    return [
      read.then(
        (scopes): [string, ScopesSupported] => [issuer.issuer, scopes],
        (error: unknown): [string, ScopesSupported] => [
          issuer.issuer,
          {
            problem: `its discovery document could not be read (${signal.aborted ? late : detailOf(error)})`,
          },
        ],
      ),
    ];
  });
  return new Map(await Promise.all(reads));
}

async function readScopes(
  metadataUrl: URL,
  issuer: string,
  fetchDocument: FetchKeySet,
  signal: AbortSignal,
): Promise<ScopesSupported> {
  const response = await fetchDocument(metadataUrl, { signal });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`${metadataUrl.href} answered HTTP ${response.status}`);
  }
  let metadata: unknown;
  try {
    metadata = JSON.parse(await readBoundedText(response, metadataUrl));
  } catch (error) {
    if (error instanceof SyntaxError) throw new Error(`${metadataUrl.href} is not valid JSON`);
    throw error;
  }
  const { issuer: named, scopes_supported: scopes } = (metadata ?? {}) as Record<string, unknown>;
  if (named !== issuer)
    return { problem: `its discovery document at ${metadataUrl.href} names another issuer` };
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((scope) => typeof scope === 'string')) {
    return { problem: 'its discovery document lists no scopes_supported' };
  }
  return { scopes: Object.freeze([...(scopes as string[])]) };
}

/** What went wrong, for the finding: the system's code of a network failure (`ECONNREFUSED`), else the message. */
function detailOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? `${error.message}: ${code}` : error.message;
}
