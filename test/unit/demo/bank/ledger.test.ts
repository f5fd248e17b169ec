import { describe, expect, it } from 'vitest';
import { fromCents, Ledger, OPENING_BALANCE_CENTS } from '../../../../src/demo/bank/ledger.js';

describe('Ledger', () => {
  it('opens every account with 1000.00', () => {
    const ledger = new Ledger();

    expect(OPENING_BALANCE_CENTS).toBe(100_000);
    expect(ledger.balanceOf('alice')).toBe(100_000);
    expect(ledger.balanceOf('bob')).toBe(100_000);
    expect(fromCents(ledger.balanceOf('alice')!)).toBe(1000);
  });

  it('moves the amount from one account to the other, to the cent', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', 25.5)).toEqual({ ok: true, balanceCents: 97_450 });
    expect(ledger.balanceOf('alice')).toBe(97_450);
    expect(ledger.balanceOf('bob')).toBe(102_550);
  });

  it('keeps amounts like 0.1 + 0.2 exact', () => {
    const ledger = new Ledger();

    ledger.transfer('alice', 'bob', 0.1);
    ledger.transfer('alice', 'bob', 0.2);

    expect(ledger.balanceOf('alice')).toBe(99_970);
    expect(fromCents(ledger.balanceOf('alice')!)).toBe(999.7);
    expect(ledger.balanceOf('bob')).toBe(100_030);
  });

  it.each([
    [0.01, 1],
    [0.29, 29],
    [1.15, 115],
    [4.35, 435],
    [19.99, 1999],
    [1000, 100_000],
  ])('takes %d as exactly %i cents', (amount, cents) => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', amount)).toEqual({ ok: true, balanceCents: 100_000 - cents });
  });

  it('lets an account spend its whole balance and no more', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', 1000)).toEqual({ ok: true, balanceCents: 0 });
    expect(ledger.transfer('alice', 'bob', 0.01)).toEqual({ ok: false, refusal: 'insufficient_funds' });
  });

  it('refuses a transfer over the balance and changes nothing', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', 1000.01)).toEqual({ ok: false, refusal: 'insufficient_funds' });
    expect(ledger.balanceOf('alice')).toBe(100_000);
    expect(ledger.balanceOf('bob')).toBe(100_000);
  });

  it.each<[string, unknown]>([
    ['zero', 0],
    ['a negative amount', -5],
    ['negative zero', -0],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '25'],
    ['a numeric string with decimals', '0.10'],
    ['null', null],
    ['undefined', undefined],
    ['an object', { amount: 5 }],
    ['a bigint', 5n],
    ['three decimals', 1.005],
    ['a tenth of a cent', 0.001],
    ['more than 1,000,000', 1_000_000.01],
  ])('refuses %s as an amount and changes nothing', (_case, amount) => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', amount)).toEqual({ ok: false, refusal: 'invalid_amount' });
    expect(ledger.balanceOf('alice')).toBe(100_000);
    expect(ledger.balanceOf('bob')).toBe(100_000);
  });

  it('refuses a positive amount too small to be a cent, rather than moving nothing', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'bob', 1e-9)).toEqual({ ok: false, refusal: 'invalid_amount' });
  });

  it('refuses a transfer to the same account', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'alice', 10)).toEqual({ ok: false, refusal: 'same_account' });
    expect(ledger.balanceOf('alice')).toBe(100_000);
  });

  it.each<[string, unknown]>([
    ['an empty name', ''],
    ['a name with a space', 'bob smith'],
    ['a name with a control character', 'bob\n'],
    ['a non-ASCII name', 'zoë'],
    ['a name of 129 characters', 'b'.repeat(129)],
    ['a number', 42],
    ['null', null],
    ['an array', ['bob']],
  ])('refuses %s as the recipient and changes nothing', (_case, to) => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', to, 10)).toEqual({ ok: false, refusal: 'invalid_recipient' });
    expect(ledger.balanceOf('alice')).toBe(100_000);
  });

  it('accepts a recipient name of 128 printable characters', () => {
    const ledger = new Ledger();

    expect(ledger.transfer('alice', 'b'.repeat(128), 10)).toEqual({ ok: true, balanceCents: 99_000 });
  });

  it('keeps accounts of different ledgers apart', () => {
    const one = new Ledger();
    const two = new Ledger();

    one.transfer('alice', 'bob', 100);

    expect(two.balanceOf('alice')).toBe(100_000);
  });

  it('stops opening accounts at 10,000 and refuses transfers to new ones', () => {
    const ledger = new Ledger();
    for (let i = 0; i < 9_999; i += 1) ledger.balanceOf(`account-${i}`);
    ledger.balanceOf('alice');

    expect(ledger.balanceOf('one-too-many')).toBeUndefined();
    expect(ledger.transfer('alice', 'one-too-many', 10)).toEqual({ ok: false, refusal: 'invalid_recipient' });
    expect(ledger.balanceOf('alice')).toBe(100_000);
  });
});
