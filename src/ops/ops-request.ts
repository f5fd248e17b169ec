/** A request the ops tools evaluate: method and request target (a query string may follow the path). */
export interface OpsRequest {
  readonly method: string;
  readonly target: string;
}
