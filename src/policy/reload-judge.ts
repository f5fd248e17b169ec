import { basename } from 'node:path';
import type { ReloadGuard } from './compiled-policy.js';
import { formatPolicyProblem } from './policy-error.js';
import { reloadBlockingFindings, type PolicyFinding } from './policy-findings.js';

/**
 * The rules of a policy reload, apart from its I/O: which file events and stat changes lead to one, how
 * reload requests share or queue, when a read content is skipped, judged, re-read after a wait, or taken
 * as the version in force, when a compiled version is refused by `reload_guard: error`, and what an
 * attempt's result is. Pure: no file system, no timer, no logging; `PolicyWatcher` reads, waits, compiles,
 * applies and logs as these functions say.
 */

/** What made a reload happen; logged with its result. */
export type ReloadTrigger = 'watch' | 'poll' | 'signal';
/**
 * How a reload attempt ended, as logged (`result`): `ok` a new version was put in force; `unchanged` the
 * file holds the version in force; `restored` the file is back to the version in force after a refused
 * one; `error` the file was refused and the version in force stays. (`ok` and `error` are the names the
 * log and `authz_policy_reloads_total` have always used.)
 */
export type ReloadResult = 'ok' | 'unchanged' | 'restored' | 'error';

/** How often the file is checked besides file-system events, which some mounts never deliver. */
export const POLL_INTERVAL_MS = 1000; // 1 second
/** Editors write in bursts (truncate, write, rename): wait this long after the last event. */
export const SETTLE_MS = 150;
/**
 * A file that would be refused (empty, missing, half written) is read again this long after, and judged
 * only if it has not changed meanwhile: a save in two steps (truncate, then write) is one reload, not a
 * refusal and a reload.
 */
export const REFUSAL_SETTLE_MS = 1000; // 1 second
/** Re-reads of a file that keeps changing before it is judged as it is. */
export const MAX_SETTLE_ROUNDS = 5;

/**
 * Whether an event on the policy file's folder is worth a look. A ConfigMap swaps `..data`, not the
 * file's own name: any `..` entry counts, and so does an event without a name.
 */
export function isWatchedEvent(policyFile: string, name: string | null): boolean {
  return name === null || name === basename(policyFile) || name.startsWith('..');
}

/** The poll saw the file's stat: a new signature schedules a reload (after `SETTLE_MS`) and is kept. */
export function pollSaw(
  lastStat: string,
  signature: string,
): { readonly lastStat: string; readonly schedule: boolean } {
  return signature === lastStat ? { lastStat, schedule: false } : { lastStat: signature, schedule: true };
}

/**
 * What a reload request does given the one running (if any): `start` one (nothing runs); `queue-signal`:
 * a signal during a file-event or poll reload gets a reload of its own after it (that one may have read
 * the file before the signal, and a SIGHUP is always answered by a line); `join` the running one, and
 * have it followed by another (the file may have changed after it read it).
 */
export function reloadRequest(
  running: ReloadTrigger | undefined,
  trigger: ReloadTrigger,
): 'start' | 'queue-signal' | 'join' {
  if (running === undefined) return 'start';
  if (trigger === 'signal' && running !== 'signal') return 'queue-signal';
  return 'join';
}

/** Whether a reload started by this trigger logs (and re-judges) content already judged: a SIGHUP does. */
export function answersUnchanged(trigger: ReloadTrigger): boolean {
  return trigger === 'signal';
}

/**
 * The reload to run once one ends: the one asked for while it ran, unless a queued signal reload will
 * re-read the file anyway or the watcher stopped. It does not answer unchanged content.
 */
export function followUp(
  again: ReloadTrigger | undefined,
  signalQueued: boolean,
  stopped: boolean,
): ReloadTrigger | undefined {
  return again !== undefined && !signalQueued && !stopped ? again : undefined;
}

/** What to do with a content just read, identified by its key (its policy version, or its read problem). */
export type SettleStep =
  /** Content already judged, and no SIGHUP to answer: nothing is logged, the result is `unchanged`. */
  | { readonly kind: 'skip' }
  /** The file holds the version in force: conclude without a judgement. */
  | { readonly kind: 'in-force' }
  /** Compile and judge this content. */
  | { readonly kind: 'compile' }
  /** It would be refused: wait `ms`, then read the file again (unless stopped meanwhile). */
  | { readonly kind: 'wait'; readonly ms: number }
  /** Conclude with the judgement of the content last compiled. */
  | { readonly kind: 'conclude' };

/** The first read of an attempt. The watcher and the poll often notice the same edit: judge each content once. */
export function firstRead(
  key: string,
  lastSeen: string,
  versionInForce: string,
  answerUnchanged: boolean,
): SettleStep {
  if (key === lastSeen && !answerUnchanged) return { kind: 'skip' };
  return contentStep(key, versionInForce);
}

/** A content to settle: the version in force needs no judgement; any other is compiled. */
export function contentStep(key: string, versionInForce: string): SettleStep {
  return key === versionInForce ? { kind: 'in-force' } : { kind: 'compile' };
}

/**
 * A content judged in settle round `round` (0 first): an accepted one, or any after `MAX_SETTLE_ROUNDS`
 * re-reads, is concluded; one that would be refused is read again after `settleMs`.
 */
export function judged(accepted: boolean, round: number, settleMs: number): SettleStep {
  return accepted || round >= MAX_SETTLE_ROUNDS ? { kind: 'conclude' } : { kind: 'wait', ms: settleMs };
}

/**
 * The file read again after the wait: the same content is concluded with its judgement (a refusal); a
 * different one is settled in the next round.
 */
export function reread(previousKey: string, key: string, versionInForce: string): SettleStep {
  return key === previousKey ? { kind: 'conclude' } : contentStep(key, versionInForce);
}

/**
 * Under `reload_guard: error`, why a compiled version is refused: the error-level findings it brings that
 * the version in force has not (`code`, `problems` as logged). Undefined: it may be put in force.
 */
export function guardRefusal(
  guard: ReloadGuard,
  findingsInForce: readonly PolicyFinding[],
  findings: readonly PolicyFinding[],
  file: string,
): { readonly code: string; readonly problems: readonly string[] } | undefined {
  if (guard !== 'error') return undefined;
  const added = reloadBlockingFindings(findingsInForce, findings);
  if (added.length === 0) return undefined;
  return {
    code: 'ERR_POLICY_FINDINGS',
    problems: added.map((finding) => {
      const { line, column, path, message, code } = finding;
      return `${formatPolicyProblem({ file, line, column, path, message })} (${code}; reload_guard: error)`;
    }),
  };
}

/**
 * An attempt concluded: its result, and whether the file on disk is then the policy in force. Accepted:
 * `ok`; refused: `error`, and the file is no longer the one in force; no judgement (the file holds the
 * version in force): `restored` after a refused version, `unchanged` otherwise.
 */
export function conclusion(
  judgement: 'accepted' | 'refused' | undefined,
  fileInForce: boolean,
): { readonly result: ReloadResult; readonly fileInForce: boolean } {
  if (judgement === 'accepted') return { result: 'ok', fileInForce: true };
  if (judgement === 'refused') return { result: 'error', fileInForce: false };
  return { result: fileInForce ? 'unchanged' : 'restored', fileInForce: true };
}
