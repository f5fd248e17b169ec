/**
 * Headers that proxies, meshes and tracers act on (`x-...` names only: `claim_headers` takes no other).
 * A claim mapped onto one of them would let a token's claim steer routing, logging or trust decisions
 * downstream, or clash with what Envoy itself sets: Envoy's `x-forwarded-*`, `x-request-id`,
 * `x-envoy-*` (Envoy docs, "HTTP header manipulation"), the client certificate it forwards
 * (`x-forwarded-client-cert`), trace context (B3, Datadog, AWS, Google), and the method overrides some
 * frameworks honour.
 */
const PREFIXES = ['x-forwarded-', 'x-envoy-', 'x-istio-', 'x-b3-', 'x-datadog-', 'x-amzn-'] as const;
const NAMES: ReadonlySet<string> = new Set([
  'x-request-id',
  'x-client-trace-id',
  'x-real-ip',
  'x-ot-span-context',
  'x-cloud-trace-context',
  'x-original-forwarded-for',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/** Why a proxy acts on this (lower-case) header, or undefined when none of those listed here does. */
export function proxyHeaderRole(header: string): string | undefined {
  if (NAMES.has(header) || PREFIXES.some((prefix) => header.startsWith(prefix))) {
    return header.startsWith('x-http-method') || header === 'x-method-override'
      ? 'some frameworks take it as the request method'
      : 'proxies, meshes or tracers act on it';
  }
  return undefined;
}
