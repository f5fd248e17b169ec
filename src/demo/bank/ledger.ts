/** Why a transfer was refused. */
export type TransferRefusal = 'invalid_recipient' | 'invalid_amount' | 'same_account' | 'insufficient_funds';

/** Every account opens with this balance, in cents: the stub bank has no sign-up. */
export const OPENING_BALANCE_CENTS = 100_000; // 1000.00
const MAX_ACCOUNTS = 10_000; // bounds memory: the stub is fed by whoever holds a token
const ACCOUNT_ID = /^[\x21-\x7E]{1,128}$/;

/** In-memory accounts for the stub bank. Amounts are integer cents so arithmetic is exact. */
export class Ledger {
  private readonly balances = new Map<string, number>();

  /** The balance of an account, in cents, opening it if it is new; undefined if no room is left. */
  balanceOf(account: string): number | undefined {
    const existing = this.balances.get(account);
    if (existing !== undefined) return existing;
    if (this.balances.size >= MAX_ACCOUNTS) return undefined;
    this.balances.set(account, OPENING_BALANCE_CENTS);
    return OPENING_BALANCE_CENTS;
  }

  /** Moves money, all or nothing. */
  transfer(
    from: string,
    to: unknown,
    amount: unknown,
  ): { ok: true; balanceCents: number } | { ok: false; refusal: TransferRefusal } {
    if (typeof to !== 'string' || !ACCOUNT_ID.test(to)) return { ok: false, refusal: 'invalid_recipient' };
    const cents = toCents(amount);
    if (cents === undefined) return { ok: false, refusal: 'invalid_amount' };
    if (to === from) return { ok: false, refusal: 'same_account' };
    const fromBalance = this.balanceOf(from);
    const toBalance = this.balanceOf(to);
    if (fromBalance === undefined || toBalance === undefined)
      return { ok: false, refusal: 'invalid_recipient' };
    if (cents > fromBalance) return { ok: false, refusal: 'insufficient_funds' };
    this.balances.set(from, fromBalance - cents);
    this.balances.set(to, toBalance + cents);
    return { ok: true, balanceCents: fromBalance - cents };
  }
}

/** A positive amount with at most two decimals and at most 1,000,000.00, in cents. */
function toCents(amount: unknown): number | undefined {
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount <= 0 || amount > 1_000_000)
    return undefined;
  const cents = Math.round(amount * 100);
  // 0.1 * 100 is 10.000000000000002 in binary floating point: allow that much, but not a fraction of a cent.
  return cents >= 1 && Math.abs(cents - amount * 100) < 1e-6 ? cents : undefined;
}

/** Cents as a JSON number of currency units (2 decimals). */
export function fromCents(cents: number): number {
  return cents / 100;
}
