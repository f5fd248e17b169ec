/**
 * A request the ops tools evaluate: method, request target (a query string may follow the path) and, for a
 * policy with services, the host it is for (`--host`) or the service Envoy would name.
 */
export interface OpsRequest {
  readonly method: string;
  readonly target: string;
  readonly host?: string | undefined;
  readonly serviceName?: string | undefined;
}
