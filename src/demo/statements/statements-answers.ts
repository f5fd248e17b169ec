/**
 * The header that carries the caller's verified email address: policy.gateway.yaml's `claim_headers` maps
 * the token's `email` claim to it, and envoy/gateway.yaml removes every client copy before ext_authz.
 */
export const EMAIL_HEADER = 'x-auth-email';

/** What the stub knows of one request: facts the server has already read off it. */
export interface StatementsRequest {
  readonly method: string;
  /** The path, query removed. */
  readonly path: string;
  /** `x-auth-subject` as the sidecar set it; undefined when absent or empty. */
  readonly subject: string | undefined;
  /** {@link EMAIL_HEADER} as the sidecar set it; undefined when absent or empty. */
  readonly email: string | undefined;
}

/** The answer to send: a status, a JSON body and any extra headers. */
export interface StatementsAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One monthly statement; every account has the same three (the stub keeps no data). */
export interface Statement {
  /** `YYYY-MM`, also its path segment: `/statements/2025-03`. */
  readonly id: string;
  readonly opening_balance: number;
  readonly closing_balance: number;
}

/** The stub's statements, oldest first; the last one's closing balance is what `GET /balance` shows. */
export const STATEMENTS: readonly Statement[] = Object.freeze([
  Object.freeze({ id: '2025-01', opening_balance: 1000, closing_balance: 1000 }),
  Object.freeze({ id: '2025-02', opening_balance: 1000, closing_balance: 975 }),
  Object.freeze({ id: '2025-03', opening_balance: 975, closing_balance: 1000 }),
]);

const LATEST = STATEMENTS[STATEMENTS.length - 1]!;
const BY_ID: ReadonlyMap<string, Statement> = new Map(
  STATEMENTS.map((statement) => [statement.id, statement]),
);

/**
 * The stub statements upstream behind Envoy, as a pure function of the request. Like the bank it trusts
 * `x-auth-subject`, because only Envoy can reach it and the sidecar sets that header on every allowed
 * request. `GET /balance` exists on purpose: the bank has the same path, and envoy/gateway.yaml with
 * policy.gateway.yaml shows one path with two meanings, chosen by host.
 *
 * - `GET /balance` → 200 `{"account", "statement", "closing_balance"}` (the latest statement's)
 * - `GET /statements` → 200 `{"account", "email", "statements": [...]}`; `email` is the verified
 *   address from {@link EMAIL_HEADER}, or null
 * - `GET /statements/{id}` → 200 `{"account", "statement": {...}}`, 404 for an unknown id
 * - `GET /healthz` → 200, without a subject
 */
export function answerStatementsRequest(request: StatementsRequest): StatementsAnswer {
  const { path } = request;
  if (path === '/healthz') return { status: 200, body: { status: 'ok' } };
  const id = /^\/statements\/([^/]+)$/.exec(path)?.[1];
  if (path !== '/balance' && path !== '/statements' && id === undefined) {
    return { status: 404, body: { error: 'not_found' } };
  }
  if (request.method !== 'GET') {
    return { status: 405, body: { error: 'method_not_allowed' }, headers: { allow: 'GET' } };
  }
  const account = request.subject;
  if (account === undefined) {
    return { status: 401, body: { error: 'unauthenticated', error_description: 'no authenticated subject' } };
  }
  if (path === '/balance') {
    return { status: 200, body: { account, statement: LATEST.id, closing_balance: LATEST.closing_balance } };
  }
  if (id === undefined) {
    return { status: 200, body: { account, email: request.email ?? null, statements: STATEMENTS } };
  }
  const statement = BY_ID.get(id);
  if (statement === undefined) return { status: 404, body: { error: 'no_such_statement' } };
  return { status: 200, body: { account, statement } };
}
