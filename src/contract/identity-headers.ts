/**
 * The request headers through which the sidecar tells the upstream who is calling. Both wings read this
 * module: the sidecar sets these headers on allow (removing any copy the client sent, also on public
 * routes), and an upstream such as the demo bank trusts them because only Envoy can reach it.
 */
export const IDENTITY_HEADERS = Object.freeze({ subject: 'x-auth-subject', scopes: 'x-auth-scopes' });
