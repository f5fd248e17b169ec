import { describe, expect, it } from 'vitest';
import type { PolicyFinding } from '../../../src/policy/policy-findings.js';
import {
  answersUnchanged,
  conclusion,
  contentStep,
  firstRead,
  followUp,
  guardRefusal,
  isWatchedEvent,
  judged,
  MAX_SETTLE_ROUNDS,
  pollSaw,
  REFUSAL_SETTLE_MS,
  reloadRequest,
  reread,
  type SettleStep,
} from '../../../src/policy/reload-judge.js';

const FILE = '/etc/authz/policy.yaml';
const V1 = 'sha256:v1';
const V2 = 'sha256:v2';
const EMPTY = 'unreadable: the file is empty';

function finding(
  code: string,
  path: string,
  level: PolicyFinding['level'],
  accepted?: string,
): PolicyFinding {
  return {
    code,
    level,
    line: 3,
    column: 5,
    path,
    message: `${code} at ${path}`,
    fix: 'fix it',
    ...(accepted === undefined ? {} : { accepted: { reason: accepted } }),
  };
}

/**
 * One reload attempt's settling, driven as `PolicyWatcher` drives it but with an injected clock: `disk(now)`
 * is the file's content key at a time, `accepts(key)` the compile and guard result. Returns the content
 * concluded on (with its acceptance, or none if the file holds the version in force), the reads' times,
 * and the clock at the end. No timers: waits only move `now`.
 */
function settleAttempt(options: {
  readonly disk: (now: number) => string;
  readonly accepts: (key: string) => boolean;
  readonly lastSeen: string;
  readonly versionInForce: string;
  readonly answerUnchanged: boolean;
  readonly start?: number;
}): { concluded: string | 'skip'; accepted?: boolean; reads: number[]; now: number } {
  let now = options.start ?? 0;
  const reads = [now];
  let key = options.disk(now);
  let step: SettleStep = firstRead(key, options.lastSeen, options.versionInForce, options.answerUnchanged);
  if (step.kind === 'skip') return { concluded: 'skip', reads, now };
  for (let round = 0; ; round += 1) {
    if (step.kind !== 'compile') return { concluded: key, reads, now };
    const accepted = options.accepts(key);
    const next = judged(accepted, round, REFUSAL_SETTLE_MS);
    if (next.kind !== 'wait') return { concluded: key, accepted, reads, now };
    now += next.ms;
    reads.push(now);
    const again = options.disk(now);
    step = reread(key, again, options.versionInForce);
    if (step.kind === 'conclude') return { concluded: key, accepted, reads, now };
    key = again;
  }
}

describe('reload judge: what leads to a reload', () => {
  it('takes events on the file itself, on `..` entries (a ConfigMap swap) and without a name', () => {
    expect(isWatchedEvent(FILE, 'policy.yaml')).toBe(true);
    expect(isWatchedEvent(FILE, '..data')).toBe(true);
    expect(isWatchedEvent(FILE, '..2026_12_07_18_00_00.123')).toBe(true);
    expect(isWatchedEvent(FILE, null)).toBe(true);
  });

  it('ignores events on other files of the folder', () => {
    expect(isWatchedEvent(FILE, 'other.yaml')).toBe(false);
    expect(isWatchedEvent(FILE, 'policy.yaml.swp')).toBe(false);
    expect(isWatchedEvent(FILE, '.policy.yaml')).toBe(false);
  });

  it('schedules a poll reload only when the stat signature changed, and keeps the new one', () => {
    expect(pollSaw('1:10:100', '1:10:100')).toEqual({ lastStat: '1:10:100', schedule: false });
    expect(pollSaw('1:10:100', '1:12:200')).toEqual({ lastStat: '1:12:200', schedule: true });
    expect(pollSaw('1:10:100', 'missing')).toEqual({ lastStat: 'missing', schedule: true });
    expect(pollSaw('missing', 'missing')).toEqual({ lastStat: 'missing', schedule: false });
  });
});

describe('reload judge: concurrent requests', () => {
  it('starts a reload when none runs, whatever asks', () => {
    expect(reloadRequest(undefined, 'watch')).toBe('start');
    expect(reloadRequest(undefined, 'poll')).toBe('start');
    expect(reloadRequest(undefined, 'signal')).toBe('start');
  });

  it('queues a signal behind a file-event or poll reload, which may have read the file before it', () => {
    expect(reloadRequest('watch', 'signal')).toBe('queue-signal');
    expect(reloadRequest('poll', 'signal')).toBe('queue-signal');
  });

  it('joins a running reload otherwise (and asks for another after it)', () => {
    expect(reloadRequest('signal', 'signal')).toBe('join');
    expect(reloadRequest('signal', 'watch')).toBe('join');
    expect(reloadRequest('watch', 'poll')).toBe('join');
    expect(reloadRequest('poll', 'watch')).toBe('join');
  });

  it('answers content already judged only for a signal', () => {
    expect(answersUnchanged('signal')).toBe(true);
    expect(answersUnchanged('watch')).toBe(false);
    expect(answersUnchanged('poll')).toBe(false);
  });

  it('follows a reload with the one asked for during it, unless a signal is queued or the watcher stopped', () => {
    expect(followUp('watch', false, false)).toBe('watch');
    expect(followUp('signal', false, false)).toBe('signal');
    expect(followUp(undefined, false, false)).toBeUndefined();
    expect(followUp('poll', true, false)).toBeUndefined();
    expect(followUp('poll', false, true)).toBeUndefined();
  });
});

describe('reload judge: a content read', () => {
  it('skips content already judged for file events and polls', () => {
    expect(firstRead(V2, V2, V1, false)).toEqual({ kind: 'skip' });
    expect(firstRead(V1, V1, V1, false)).toEqual({ kind: 'skip' });
    expect(firstRead(EMPTY, EMPTY, V1, false)).toEqual({ kind: 'skip' });
  });

  it('re-judges content already judged for a signal', () => {
    expect(firstRead(V2, V2, V1, true)).toEqual({ kind: 'compile' });
    expect(firstRead(V1, V1, V1, true)).toEqual({ kind: 'in-force' });
  });

  it('takes the version in force as such, without compiling it', () => {
    expect(firstRead(V1, EMPTY, V1, false)).toEqual({ kind: 'in-force' });
    expect(contentStep(V1, V1)).toEqual({ kind: 'in-force' });
  });

  it('compiles any other content', () => {
    expect(firstRead(V2, V1, V1, false)).toEqual({ kind: 'compile' });
    expect(contentStep(EMPTY, V1)).toEqual({ kind: 'compile' });
  });
});

describe('reload judge: settling a refused content', () => {
  it('concludes an accepted content at once', () => {
    expect(judged(true, 0, REFUSAL_SETTLE_MS)).toEqual({ kind: 'conclude' });
  });

  it('waits the settle time and reads again before refusing', () => {
    expect(judged(false, 0, REFUSAL_SETTLE_MS)).toEqual({ kind: 'wait', ms: REFUSAL_SETTLE_MS });
    expect(judged(false, MAX_SETTLE_ROUNDS - 1, 250)).toEqual({ kind: 'wait', ms: 250 });
  });

  it('refuses a content that keeps changing after MAX_SETTLE_ROUNDS re-reads', () => {
    expect(judged(false, MAX_SETTLE_ROUNDS, REFUSAL_SETTLE_MS)).toEqual({ kind: 'conclude' });
  });

  it('concludes on a content unchanged after the wait; settles a changed one anew', () => {
    expect(reread(EMPTY, EMPTY, V1)).toEqual({ kind: 'conclude' });
    expect(reread(EMPTY, V2, V1)).toEqual({ kind: 'compile' });
    expect(reread(EMPTY, V1, V1)).toEqual({ kind: 'in-force' });
  });

  it('makes a save in two steps (truncate, then write) one reload of the written version', () => {
    const run = settleAttempt({
      disk: (now) => (now < 400 ? EMPTY : V2),
      accepts: (key) => key !== EMPTY,
      lastSeen: V1,
      versionInForce: V1,
      answerUnchanged: false,
    });
    expect(run).toEqual({
      concluded: V2,
      accepted: true,
      reads: [0, REFUSAL_SETTLE_MS],
      now: REFUSAL_SETTLE_MS,
    });
  });

  it('refuses a file that stays empty for the settle time, read twice', () => {
    const run = settleAttempt({
      disk: () => EMPTY,
      accepts: () => false,
      lastSeen: V1,
      versionInForce: V1,
      answerUnchanged: false,
      start: 5000,
    });
    expect(run).toEqual({ concluded: EMPTY, accepted: false, reads: [5000, 6000], now: 6000 });
  });

  it('takes a file put back to the version in force during the wait as that version', () => {
    const run = settleAttempt({
      disk: (now) => (now < 1000 ? EMPTY : V1),
      accepts: () => false,
      lastSeen: V1,
      versionInForce: V1,
      answerUnchanged: true,
    });
    expect(run).toEqual({ concluded: V1, reads: [0, 1000], now: 1000 });
  });

  it('judges a file that never settles as it is after MAX_SETTLE_ROUNDS re-reads', () => {
    const run = settleAttempt({
      disk: (now) => `unreadable: half written at ${now}`,
      accepts: () => false,
      lastSeen: V1,
      versionInForce: V1,
      answerUnchanged: false,
    });
    const reads = Array.from({ length: MAX_SETTLE_ROUNDS + 1 }, (_, round) => round * REFUSAL_SETTLE_MS);
    expect(run).toEqual({
      concluded: `unreadable: half written at ${MAX_SETTLE_ROUNDS * REFUSAL_SETTLE_MS}`,
      accepted: false,
      reads,
      now: MAX_SETTLE_ROUNDS * REFUSAL_SETTLE_MS,
    });
  });

  it('skips, without reading again, a refused content the watcher and the poll both noticed', () => {
    const run = settleAttempt({
      disk: () => EMPTY,
      accepts: () => false,
      lastSeen: EMPTY,
      versionInForce: V1,
      answerUnchanged: false,
    });
    expect(run).toEqual({ concluded: 'skip', reads: [0], now: 0 });
  });
});

describe('reload judge: reload_guard', () => {
  it('refuses a version bringing a new error-level finding, naming it', () => {
    const refusal = guardRefusal(
      'error',
      [],
      [finding('route_open', 'services[0].routes[1]', 'error')],
      FILE,
    );
    expect(refusal?.code).toBe('ERR_POLICY_FINDINGS');
    expect(refusal?.problems).toHaveLength(1);
    expect(refusal?.problems[0]).toContain('(route_open; reload_guard: error)');
    expect(refusal?.problems[0]).toContain(FILE);
    expect(refusal?.problems[0]).toContain('services[0].routes[1]');
  });

  it('lets through error findings already in force, warnings, notices and accepted risks', () => {
    const inForce = [finding('route_open', 'services[0].routes[1]', 'error')];
    const next = [
      finding('route_open', 'services[0].routes[1]', 'error'),
      finding('weak_thing', 'services[0]', 'warning'),
      finding('note', 'services[0]', 'notice'),
      finding('route_open', 'services[0].routes[2]', 'error', 'reviewed'),
    ];
    expect(guardRefusal('error', inForce, next, FILE)).toBeUndefined();
  });

  it('refuses nothing with reload_guard: off', () => {
    expect(guardRefusal('off', [], [finding('route_open', 'services[0]', 'error')], FILE)).toBeUndefined();
  });
});

describe('reload judge: the result of an attempt', () => {
  it('ok for an accepted version, which the file then is', () => {
    expect(conclusion('accepted', true)).toEqual({ result: 'ok', fileInForce: true });
    expect(conclusion('accepted', false)).toEqual({ result: 'ok', fileInForce: true });
  });

  it('error for a refused version: the file is no longer the one in force', () => {
    expect(conclusion('refused', true)).toEqual({ result: 'error', fileInForce: false });
    expect(conclusion('refused', false)).toEqual({ result: 'error', fileInForce: false });
  });

  it('unchanged for the version in force; restored when it replaces a refused one', () => {
    expect(conclusion(undefined, true)).toEqual({ result: 'unchanged', fileInForce: true });
    expect(conclusion(undefined, false)).toEqual({ result: 'restored', fileInForce: true });
  });
});
