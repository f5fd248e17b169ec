import { describe, expect, it } from 'vitest';
import { MfaTransactions, type PendingGrant } from '../../../../src/demo/idp/mfa-transactions.js';
import { createManualClock } from '../../../kit/manual-clock.js';

const GRANT: PendingGrant = {
  user: 'alice',
  scopes: ['transfer:funds'],
  audience: 'https://my-banking-api',
  clientId: 'c',
};

describe('MfaTransactions', () => {
  it('issues 32-byte base64url tokens and 6-digit codes, all different', () => {
    const transactions = new MfaTransactions(createManualClock().now);
    const tokens = new Set<string>();
    for (let i = 0; i < 50; i += 1) {
      const { mfaToken, code, expiresInSeconds } = transactions.begin(GRANT);
      expect(mfaToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(code).toMatch(/^\d{6}$/);
      expect(expiresInSeconds).toBe(300);
      tokens.add(mfaToken);
    }
    expect(tokens.size).toBe(50);
  });

  it('redeems a right code once', () => {
    const transactions = new MfaTransactions(createManualClock().now);
    const { mfaToken, code } = transactions.begin(GRANT);
    expect(transactions.redeem(mfaToken, code)).toEqual({ outcome: 'ok', grant: GRANT });
    expect(transactions.redeem(mfaToken, code)).toEqual({ outcome: 'unknown' });
    expect(transactions.codeFor(mfaToken)).toBeUndefined();
  });

  it('voids a transaction at the last wrong attempt', () => {
    const transactions = new MfaTransactions(createManualClock().now, { maxAttempts: 3 });
    const { mfaToken, code } = transactions.begin(GRANT);
    const wrong = code === '999999' ? '000000' : '999999';
    expect(transactions.redeem(mfaToken, wrong)).toMatchObject({ outcome: 'wrong_code', attemptsLeft: 2 });
    expect(transactions.redeem(mfaToken, '12')).toMatchObject({ outcome: 'wrong_code', attemptsLeft: 1 });
    expect(transactions.redeem(mfaToken, wrong)).toMatchObject({ outcome: 'wrong_code', attemptsLeft: 0 });
    expect(transactions.redeem(mfaToken, code)).toEqual({ outcome: 'unknown' });
  });

  it('expires a code at its deadline', () => {
    const clock = createManualClock();
    const transactions = new MfaTransactions(clock.now);
    const { mfaToken, code } = transactions.begin(GRANT);
    clock.advance(5 * 60_000 - 1);
    expect(transactions.codeFor(mfaToken)).toBe(code);
    clock.advance(1);
    expect(transactions.codeFor(mfaToken)).toBeUndefined();
    expect(transactions.redeem(mfaToken, code)).toEqual({ outcome: 'unknown' });
  });

  it('keeps at most `capacity` pending transactions, evicting the oldest', () => {
    const clock = createManualClock();
    const transactions = new MfaTransactions(clock.now, { capacity: 3 });
    const first = transactions.begin(GRANT);
    const others = [transactions.begin(GRANT), transactions.begin(GRANT), transactions.begin(GRANT)];
    expect(transactions.size).toBe(3);
    expect(transactions.codeFor(first.mfaToken)).toBeUndefined();
    for (const { mfaToken, code } of others) expect(transactions.codeFor(mfaToken)).toBe(code);
  });

  it('sweeps expired transactions before evicting live ones', () => {
    const clock = createManualClock();
    const transactions = new MfaTransactions(clock.now, { capacity: 2, ttlMs: 1000 });
    transactions.begin(GRANT);
    clock.advance(500);
    const live = transactions.begin(GRANT);
    clock.advance(600); // the first has expired, the second has not
    transactions.begin(GRANT);
    expect(transactions.codeFor(live.mfaToken)).toBe(live.code);
    expect(transactions.size).toBe(2);
  });
});
