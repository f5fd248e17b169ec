import { describe, expect, it } from 'vitest';
import {
  answerStatementsRequest,
  STATEMENTS,
  type StatementsRequest,
} from '../../../../src/demo/statements/statements-answers.js';

/*
 * The stub statements upstream (`authz statements`) as a pure function of the request: what it answers
 * for each path, and that it trusts nothing but the subject and email the sidecar set. Over real HTTP and
 * Envoy it is exercised by test/e2e/gateway-through-envoy.test.ts.
 */

function request(overrides: Partial<StatementsRequest>): StatementsRequest {
  return { method: 'GET', path: '/statements', subject: 'alice', email: undefined, ...overrides };
}

describe('answerStatementsRequest', () => {
  it('answers GET /balance with the latest statement, in a shape unlike the bank’s {account, balance}', () => {
    expect(answerStatementsRequest(request({ path: '/balance' }))).toEqual({
      status: 200,
      body: { account: 'alice', statement: '2025-03', closing_balance: 1000 },
    });
  });

  it('lists the statements of the subject, with the verified email or null', () => {
    expect(answerStatementsRequest(request({ subject: 'bob', email: 'bob@example.com' }))).toEqual({
      status: 200,
      body: { account: 'bob', email: 'bob@example.com', statements: STATEMENTS },
    });
    expect(answerStatementsRequest(request({})).body).toMatchObject({ account: 'alice', email: null });
    expect(STATEMENTS.map((statement) => statement.id)).toEqual(['2025-01', '2025-02', '2025-03']);
  });

  it('shows one statement by id, and 404 no_such_statement for an id it does not have', () => {
    expect(answerStatementsRequest(request({ path: '/statements/2025-02' }))).toEqual({
      status: 200,
      body: {
        account: 'alice',
        statement: { id: '2025-02', opening_balance: 1000, closing_balance: 975 },
      },
    });
    expect(answerStatementsRequest(request({ path: '/statements/1999-12' }))).toEqual({
      status: 404,
      body: { error: 'no_such_statement' },
    });
  });

  it.each(['/', '/statements/', '/statements/2025-01/pdf', '/Statements', '/balance/', '/transfer'])(
    'answers 404 not_found for %s',
    (path) => {
      expect(answerStatementsRequest(request({ path }))).toEqual({
        status: 404,
        body: { error: 'not_found' },
      });
    },
  );

  it.each(['/balance', '/statements', '/statements/2025-01'])(
    'answers 401 unauthenticated on %s when no subject arrived',
    (path) => {
      expect(answerStatementsRequest(request({ path, subject: undefined }))).toEqual({
        status: 401,
        body: { error: 'unauthenticated', error_description: 'no authenticated subject' },
      });
    },
  );

  it.each([
    ['POST', '/statements'],
    ['DELETE', '/statements/2025-01'],
    ['PUT', '/balance'],
    ['HEAD', '/balance'],
  ])('answers %s %s with 405 and Allow: GET', (method, path) => {
    expect(answerStatementsRequest(request({ method, path }))).toEqual({
      status: 405,
      body: { error: 'method_not_allowed' },
      headers: { allow: 'GET' },
    });
  });

  it('answers /healthz without a subject', () => {
    expect(answerStatementsRequest(request({ path: '/healthz', subject: undefined }))).toEqual({
      status: 200,
      body: { status: 'ok' },
    });
  });
});
