import { describe, expect, it } from 'vitest';
import {
  boundLabelValue,
  LabelBudget,
  MAX_LABEL_VALUE_LENGTH,
  OTHER_LABEL_VALUE,
} from '../../../src/metrics/label-budget.js';

type Name = 'route' | 'outcome' | 'reason';
const NAMES: readonly Name[] = ['route', 'outcome', 'reason'];

describe('LabelBudget', () => {
  it('keeps combinations as given up to the limit, and the same one again at no cost', () => {
    const budget = new LabelBudget<Name>(NAMES, ['route', 'reason'], 2);

    expect(budget.admit({ route: 'a', outcome: 'allow', reason: 'allowed' })).toEqual({
      route: 'a',
      outcome: 'allow',
      reason: 'allowed',
    });
    expect(budget.admit({ route: 'b', outcome: 'allow', reason: 'allowed' }).route).toBe('b');
    expect(budget.admit({ route: 'a', outcome: 'allow', reason: 'allowed' }).route).toBe('a');
    expect(budget.size).toBe(2);
  });

  it('folds the route of a new combination past the limit, keeping the reason within the headroom', () => {
    const budget = new LabelBudget<Name>(NAMES, ['route', 'reason'], 2);
    budget.admit({ route: 'a', outcome: 'allow', reason: 'allowed' });
    budget.admit({ route: 'b', outcome: 'allow', reason: 'allowed' });

    expect(budget.admit({ route: 'c', outcome: 'deny', reason: 'token_expired' })).toEqual({
      route: OTHER_LABEL_VALUE,
      outcome: 'deny',
      reason: 'token_expired',
    });
    // Another new route with the same outcome and reason lands on the same (other) series.
    expect(budget.admit({ route: 'd', outcome: 'deny', reason: 'token_expired' }).route).toBe(
      OTHER_LABEL_VALUE,
    );
    // Series that existed before the limit was reached keep their own labels.
    expect(budget.admit({ route: 'a', outcome: 'allow', reason: 'allowed' }).route).toBe('a');
    expect(budget.size).toBe(3);
  });

  it('folds the reason too once the headroom is spent, and always admits the fully folded combination', () => {
    const budget = new LabelBudget<Name>(NAMES, ['route', 'reason'], 2); // headroom: 1
    budget.admit({ route: 'a', outcome: 'allow', reason: 'r1' });
    budget.admit({ route: 'b', outcome: 'allow', reason: 'r1' });
    budget.admit({ route: 'c', outcome: 'deny', reason: 'r2' }); // (other), deny, r2: the headroom

    const folded = budget.admit({ route: 'd', outcome: 'deny', reason: 'r3' });
    expect(folded).toEqual({ route: OTHER_LABEL_VALUE, outcome: 'deny', reason: OTHER_LABEL_VALUE });
    // The unfolded label still tells outcomes apart: one fully folded series per outcome.
    expect(budget.admit({ route: 'e', outcome: 'would_deny', reason: 'r4' })).toEqual({
      route: OTHER_LABEL_VALUE,
      outcome: 'would_deny',
      reason: OTHER_LABEL_VALUE,
    });
    expect(budget.admit({ route: 'f', outcome: 'deny', reason: 'r5' })).toEqual(folded);
    expect(budget.size).toBe(5);
  });

  it('stays bounded however many distinct values arrive', () => {
    const budget = new LabelBudget<Name>(NAMES, ['route', 'reason'], 100);
    for (let i = 0; i < 10_000; i += 1) {
      budget.admit({ route: `/path/${i}`, outcome: i % 2 === 0 ? 'allow' : 'deny', reason: `reason-${i}` });
    }

    expect(budget.size).toBeLessThanOrEqual(100 + 10 + 2);
  });

  it('cuts long values before counting them', () => {
    const budget = new LabelBudget<Name>(NAMES, ['route'], 10);
    const long = 'x'.repeat(MAX_LABEL_VALUE_LENGTH + 50);

    expect(budget.admit({ route: long, outcome: 'allow', reason: 'allowed' }).route).toHaveLength(
      MAX_LABEL_VALUE_LENGTH,
    );
    expect(
      budget.admit({ route: `${long}-other-tail`, outcome: 'allow', reason: 'allowed' }).route,
    ).toHaveLength(MAX_LABEL_VALUE_LENGTH);
    expect(budget.size).toBe(1);
  });

  it.each([
    [0, ['route']],
    [1.5, ['route']],
    [Number.NaN, ['route']],
    [10, []],
    [10, ['subject']],
  ])('refuses limit %s with fold %j', (limit, fold) => {
    expect(() => new LabelBudget<string>(NAMES, fold, limit)).toThrow(RangeError);
  });
});

describe('boundLabelValue', () => {
  it('leaves values up to the maximum alone', () => {
    const exact = 'y'.repeat(MAX_LABEL_VALUE_LENGTH);

    expect(boundLabelValue('GET /accounts/{id}')).toBe('GET /accounts/{id}');
    expect(boundLabelValue(exact)).toBe(exact);
  });

  it('does not split a surrogate pair at the cut', () => {
    const value = `${'z'.repeat(MAX_LABEL_VALUE_LENGTH - 1)}😀tail`;

    expect(boundLabelValue(value)).toBe('z'.repeat(MAX_LABEL_VALUE_LENGTH - 1));
  });
});
