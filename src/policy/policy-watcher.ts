import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CompiledPolicy } from './compiled-policy.js';
import { policyFromRead, readPolicyText } from './load-policy.js';
import { describePolicyChange, policyChange } from './policy-change.js';
import { formatPolicyProblem, PolicyError } from './policy-error.js';
import { policyFindings, type PolicyFinding } from './policy-findings.js';
import { policyVersion } from './policy-version.js';
import type { TextFileRead } from './read-text-file.js';
import {
  answersUnchanged,
  conclusion,
  firstRead,
  followUp,
  guardRefusal,
  isWatchedEvent,
  judged,
  pollSaw,
  POLL_INTERVAL_MS,
  REFUSAL_SETTLE_MS,
  reloadRequest,
  reread,
  SETTLE_MS,
  type ReloadResult,
  type ReloadTrigger,
  type SettleStep,
} from './reload-judge.js';
import { YamlLocations } from './yaml-locations.js';

export { REFUSAL_SETTLE_MS, type ReloadResult, type ReloadTrigger } from './reload-judge.js';

export interface PolicyWatcherOptions {
  readonly policyFile: string;
  readonly logger: Logger;
  /**
   * A new compiled policy is ready: the subscriber puts it in force (with whatever it derives from it,
   * such as its issuers' keys) before the reload is logged and `onReload` is called. Must not throw.
   */
  readonly onPolicy: (policy: CompiledPolicy) => void;
  /**
   * Called once after every logged reload attempt (not for the file watcher and the poll noticing content
   * already judged). Read `fileInForce` and `findings` for the state it leaves.
   */
  readonly onReload?: (result: ReloadResult) => void;
  /** Milliseconds to wait before judging a file that would be refused (default `REFUSAL_SETTLE_MS`). */
  readonly refusalSettleMs?: number;
  /**
   * How that wait is made (default: a timer). Tests end it themselves, so that what happens to the file
   * during it is not a race with the clock.
   */
  readonly settleWait?: (ms: number) => Promise<unknown>;
}

/** A read file and its identity: the policy version of its text, or its read problem. */
interface FileContent {
  readonly read: TextFileRead;
  readonly key: string;
}

/** A file judged: its compiled policy and findings, or why it is refused. */
type Judgement =
  | {
      readonly kind: 'accepted';
      readonly policy: CompiledPolicy;
      readonly findings: readonly PolicyFinding[];
    }
  | { readonly kind: 'refused'; readonly fields: Record<string, unknown> };

/**
 * A policy file's life in a running service: the initial load, then its safe replacement. A new version is
 * read, validated and compiled off to the side and handed to `onPolicy` in one call; a file that does not
 * compile never takes effect: the last good policy stays, and the error is logged with file, line and
 * path. With `reload_guard: error` (the default), neither does a version that brings a new error-level
 * finding. Changes are noticed through file-system events on the folder (editors that save by rename,
 * Kubernetes ConfigMaps that swap a symlink), a once-a-second check of the file, and `reload()` (SIGHUP);
 * all of them end in the same content comparison, so nothing reloads twice. Every attempt is logged once
 * (`event: policy_reload`); every finding of each version put in force once (`event: policy_finding`).
 */
export class PolicyWatcher {
  private current: CompiledPolicy;
  private currentFindings: readonly PolicyFinding[];
  private running: Promise<ReloadResult> | undefined;
  private runningTrigger: ReloadTrigger | undefined;
  /** A reload was asked for while one ran (by what): the file may have changed after it read it. */
  private again: ReloadTrigger | undefined;
  /** The signal reload queued behind a running file-event or poll reload. */
  private signalAfter: Promise<ReloadResult> | undefined;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The file's stat as last seen by the poll; taken before the initial load, so no edit falls between. */
  private lastStat: string;
  /** The content key of the last file judged, accepted or refused. */
  private lastSeen: string;
  /** Whether the file as last judged is the policy in force (false while a refused version sits on disk). */
  private inForce = true;

  private constructor(
    private readonly options: PolicyWatcherOptions,
    initial: CompiledPolicy,
    findings: readonly PolicyFinding[],
    statSignature: string,
  ) {
    this.current = initial;
    this.currentFindings = findings;
    this.lastStat = statSignature;
    this.lastSeen = initial.version;
  }

  /**
   * Loads the initial policy and logs its findings (error-level ones do not stop the start: there is no
   * policy in force to keep instead); `onPolicy` is not called for it (read `policy`). Nothing is watched
   * until `watch()`. @throws PolicyError: a service must not start on a policy it cannot use.
   */
  static async start(options: PolicyWatcherOptions): Promise<PolicyWatcher> {
    const signature = await statSignature(options.policyFile);
    const read = await readPolicyText(options.policyFile);
    const policy = await policyFromRead(read, options.policyFile);
    const findings = 'text' in read ? findingsOf(policy, read.text) : [];
    const watcher = new PolicyWatcher(options, policy, findings, signature);
    watcher.logFindings();
    return watcher;
  }

  /** The policy in force. */
  get policy(): CompiledPolicy {
    return this.current;
  }

  /** The findings of the policy in force. */
  get findings(): readonly PolicyFinding[] {
    return this.currentFindings;
  }

  /** Whether the file on disk, as last read, is the policy in force (false while a refused one is). */
  get fileInForce(): boolean {
    return this.inForce;
  }

  /**
   * Re-reads the file now. Concurrent calls share one reload, and a change during it triggers another; a
   * signal during a file-event reload gets a reload of its own after it (that one may have read the file
   * before the signal, and a SIGHUP is always answered by a line).
   */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    const request = reloadRequest(this.runningTrigger, trigger);
    if (request === 'start' || this.running === undefined)
      return this.run(trigger, answersUnchanged(trigger));
    if (request === 'queue-signal') {
      const next = () => {
        this.signalAfter = undefined;
        return this.reload('signal');
      };
      return (this.signalAfter ??= this.running.then(next, next));
    }
    this.again = trigger;
    return this.running;
  }

  private run(trigger: ReloadTrigger, answerUnchanged: boolean): Promise<ReloadResult> {
    this.runningTrigger = trigger;
    this.running = this.reloadOnce(trigger, answerUnchanged).finally(() => {
      this.running = undefined;
      this.runningTrigger = undefined;
      const again = followUp(this.again, this.signalAfter !== undefined, this.stopped);
      this.again = undefined;
      // A queued signal re-reads the file anyway; callers that shared this reload have had their answer.
      if (again !== undefined) void this.run(again, false);
    });
    return this.running;
  }

  /** Starts watching the file (events on its folder plus a poll). */
  watch(): void {
    const file = this.options.policyFile;
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        // A ConfigMap swaps `..data`, not the file's own name: any change in the folder is worth a look.
        if (isWatchedEvent(file, name)) this.schedule('watch');
      });
      this.watcher.on('error', () => undefined); // the poll still covers the file
    } catch {
      this.options.logger.warn(
        { event: 'policy_watch_unavailable', file },
        'file events unavailable; polling',
      );
    }
    this.poller = setInterval(() => void this.pollOnce(), POLL_INTERVAL_MS);
    this.poller.unref();
  }

  /** Stops watching; the policy in force stays. A reload waiting for the file to settle ends silently. */
  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    if (this.poller !== undefined) clearInterval(this.poller);
    if (this.settleTimer !== undefined) clearTimeout(this.settleTimer);
  }

  private schedule(trigger: ReloadTrigger): void {
    if (this.settleTimer !== undefined) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.reload(trigger), SETTLE_MS);
    this.settleTimer.unref();
  }

  private async pollOnce(): Promise<void> {
    const seen = pollSaw(this.lastStat, await statSignature(this.options.policyFile));
    this.lastStat = seen.lastStat;
    if (seen.schedule) this.schedule('poll');
  }

  /** `answerUnchanged`: log (and re-judge) content already judged; for a SIGHUP, not for file events. */
  private async reloadOnce(trigger: ReloadTrigger, answerUnchanged: boolean): Promise<ReloadResult> {
    const { logger, policyFile } = this.options;
    const content = await readContent(policyFile);
    // The watcher and the poll often notice the same edit: judge each content once. SIGHUP always answers.
    const step = firstRead(content.key, this.lastSeen, this.current.version, answerUnchanged);
    if (step.kind === 'skip') return 'unchanged';
    const settled = await this.settle(content, step);
    if (settled === undefined) return 'unchanged'; // stopped while waiting
    this.lastSeen = settled.content.key;
    const { judgement } = settled;
    const { result, fileInForce } = conclusion(judgement?.kind, this.inForce);
    if (judgement?.kind === 'accepted') {
      this.apply(trigger, judgement.policy, judgement.findings);
      this.options.onReload?.(result);
      return result;
    }
    if (judgement?.kind === 'refused') {
      this.inForce = fileInForce;
      this.refuse(trigger, judgement.fields);
      this.options.onReload?.(result);
      return result;
    }
    this.inForce = fileInForce;
    logger.info(
      { event: 'policy_reload', result, trigger, file: policyFile, policy_version: this.current.version },
      result === 'restored' ? 'policy file restored to the version in force' : 'policy file unchanged',
    );
    this.options.onReload?.(result);
    return result;
  }

  /**
   * Judges a file's content once it has settled: a content that would be refused is read again after
   * `refusalSettleMs`, and whatever is there then is judged instead if it differs. No judgement: the file
   * holds the version in force. Undefined: stopped meanwhile.
   */
  private async settle(
    first: FileContent,
    firstStep: SettleStep,
  ): Promise<{ content: FileContent; judgement?: Judgement } | undefined> {
    const settleMs = this.options.refusalSettleMs ?? REFUSAL_SETTLE_MS;
    let content = first;
    let step = firstStep;
    for (let round = 0; ; round += 1) {
      if (step.kind !== 'compile') return { content }; // the file holds the version in force
      const judgement = await this.judge(content);
      const next = judged(judgement.kind === 'accepted', round, settleMs);
      if (next.kind !== 'wait') return { content, judgement };
      await (this.options.settleWait ?? delay)(next.ms);
      if (this.stopped) return undefined;
      const again = await readContent(this.options.policyFile);
      step = reread(content.key, again.key, this.current.version);
      if (step.kind === 'conclude') return { content, judgement };
      content = again;
    }
  }

  /** Compiles a file's content and, under `reload_guard: error`, checks it brings no new error finding. */
  private async judge(content: FileContent): Promise<Judgement> {
    const file = this.options.policyFile;
    let policy: CompiledPolicy;
    try {
      policy = await policyFromRead(content.read, file);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return {
        kind: 'refused',
        fields: { code: error.code, problems: error.problems.map(formatPolicyProblem) },
      };
    }
    const findings = 'text' in content.read ? findingsOf(policy, content.read.text) : [];
    const refusal = guardRefusal(this.current.reloadGuard, this.currentFindings, findings, file);
    if (refusal !== undefined) return { kind: 'refused', fields: { ...refusal } };
    return { kind: 'accepted', policy, findings };
  }

  private apply(trigger: ReloadTrigger, policy: CompiledPolicy, findings: readonly PolicyFinding[]): void {
    const previous = this.current;
    this.current = policy;
    this.currentFindings = findings;
    this.inForce = true;
    this.options.onPolicy(policy);
    this.options.logger.info(
      {
        event: 'policy_reload',
        result: 'ok',
        trigger,
        file: this.options.policyFile,
        policy_version: policy.version,
        previous: previous.version,
        changes: describePolicyChange(policyChange(previous, policy)),
      },
      'policy reloaded',
    );
    this.logFindings();
  }

  private refuse(trigger: ReloadTrigger, fields: Record<string, unknown>): void {
    this.options.logger.error(
      {
        event: 'policy_reload',
        result: 'error',
        trigger,
        file: this.options.policyFile,
        ...fields,
        policy_version: this.current.version,
      },
      'policy change refused; the previous policy stays in force',
    );
  }

  /** Each finding of the policy now in force, once, at a level to match (accepted ones as information). */
  private logFindings(): void {
    const { logger, policyFile } = this.options;
    for (const finding of this.currentFindings) {
      const fields = {
        event: 'policy_finding',
        code: finding.code,
        finding_level: finding.level,
        file: finding.line > 0 ? `${policyFile}:${finding.line}` : policyFile,
        path: finding.path,
        message: finding.message,
        fix: finding.fix,
        policy_version: this.current.version,
        ...(finding.accepted === undefined ? {} : { accepted: finding.accepted.reason }),
      };
      const text = `policy finding ${finding.code}: ${finding.message}`;
      if (finding.accepted !== undefined || finding.level === 'notice') logger.info(fields, text);
      else if (finding.level === 'warning') logger.warn(fields, text);
      else logger.error(fields, text);
    }
  }
}

/** A finding's identity across versions: its code and where in the document it is. */
function findingsOf(policy: CompiledPolicy, text: string): readonly PolicyFinding[] {
  return policyFindings(policy, new YamlLocations(text));
}

async function readContent(file: string): Promise<FileContent> {
  const read = await readPolicyText(file);
  // The policy version is the hash of its text: the same text means the same policy.
  return { read, key: 'text' in read ? policyVersion(read.text) : `unreadable: ${read.problem}` };
}

/** stat follows symlinks, so a swapped ConfigMap target shows as a new inode. */
async function statSignature(file: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  return info === undefined ? 'missing' : `${info.ino}:${info.size}:${info.mtimeMs}`;
}
