import type { ApiAnswer, Operation } from './bank-session.js';
import { jsonBody } from './json-body.js';

const API_TIMEOUT_MS = 10_000; // 10 seconds
const MAX_BODY_CHARS = 64 * 1024; // the bank's answers are a few dozen bytes

/**
 * Calls the bank API on this origin, so every call crosses Envoy and the authz sidecar. Cookies are not
 * sent: the API authenticates Bearer tokens only (and the identity provider's cookie shares the host).
 */
export async function callBankApi(operation: Operation, accessToken: string | undefined): Promise<ApiAnswer> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (accessToken !== undefined) headers['authorization'] = `Bearer ${accessToken}`;
  if (operation.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(operation.path, {
    method: operation.method,
    headers,
    ...(operation.body === undefined ? {} : { body: JSON.stringify(operation.body) }),
    credentials: 'omit',
    cache: 'no-store',
    redirect: 'error',
    signal: AbortSignal.timeout(API_TIMEOUT_MS),
  });
  const body = await jsonBody(response, MAX_BODY_CHARS);
  return { status: response.status, challenge: response.headers.get('www-authenticate'), body };
}
