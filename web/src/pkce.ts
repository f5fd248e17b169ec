/**
 * Proof Key for Code Exchange (RFC 7636) with the S256 method: the verifier stays in this page's memory,
 * only its SHA-256 travels in the authorization request, so a code stolen from the redirect is useless.
 */

/** 32 random octets, base64url: 43 characters, as RFC 7636 section 4.1 recommends. */
export function createCodeVerifier(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 section 4.2). */
export async function codeChallengeS256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** An unguessable `state` (RFC 6749 section 10.12) binding a callback to the request this page made. */
export function createState(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(16)));
}

/** Base64url without padding (RFC 4648 section 5). */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
