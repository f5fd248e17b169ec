/**
 * Walks a parsed YAML or JSON tree along `keys`; `undefined` as soon as a step is missing, so assertions
 * name the bad value.
 */
export function at(value: unknown, ...keys: Array<string | number>): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

/** The path from an Envoy cluster to the `socket_address` of its first endpoint. */
export const FIRST_ENDPOINT_SOCKET = Object.freeze([
  'load_assignment',
  'endpoints',
  0,
  'lb_endpoints',
  0,
  'endpoint',
  'address',
  'socket_address',
] as const);
