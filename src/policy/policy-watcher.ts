import { watch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { CompiledPolicy } from './compiled-policy.js';
import { loadPolicyDirectory, policyFromRead, readPolicyText } from './load-policy.js';
import {
  directoryVersion,
  type DirectoryInForce,
  type DirectoryJudgement,
  type FileVerdict,
  type PolicyDirectoryListing,
} from './policy-directory.js';
import { isPolicyDirectory, readPolicyDirectory } from './read-policy-directory.js';
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
  /**
   * A policy directory at start: serve its service files that pass even if some have error-level findings
   * (`serve --allow-policy-errors`), as a single file is served. Default false.
   */
  readonly allowPolicyErrors?: boolean;
}

/**
 * A read policy and its identity: a file's text (key: its policy version) or read problem, or a policy
 * directory's files (key: the version they would have were every one of them in force).
 */
type FileContent =
  | { readonly read: TextFileRead; readonly key: string }
  | { readonly listing: PolicyDirectoryListing; readonly key: string };

/** A file judged: its compiled policy and findings, or why it is refused; or a directory's files judged. */
type Judgement =
  | {
      readonly kind: 'accepted';
      readonly policy: CompiledPolicy;
      readonly findings: readonly PolicyFinding[];
    }
  | { readonly kind: 'refused'; readonly fields: Record<string, unknown> }
  | {
      readonly kind: 'directory';
      readonly judgement: DirectoryJudgement;
      readonly everyFileInForce: boolean;
    };

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
  /** A policy directory's state: what is in force, each file's last verdict, and each file's content logged. */
  private directory:
    | {
        inForce: DirectoryInForce;
        verdicts: readonly FileVerdict[];
        readonly logged: Map<string, string>;
        fileResults: ('ok' | 'error')[];
      }
    | undefined;

  private constructor(
    private readonly options: PolicyWatcherOptions,
    initial: CompiledPolicy,
    findings: readonly PolicyFinding[],
    statSignature: string,
    lastSeen: string,
  ) {
    this.current = initial;
    this.currentFindings = findings;
    this.lastStat = statSignature;
    this.lastSeen = lastSeen;
  }

  /**
   * Loads the initial policy and logs its findings (error-level ones do not stop the start: there is no
   * policy in force to keep instead); `onPolicy` is not called for it (read `policy`). Nothing is watched
   * until `watch()`. @throws PolicyError: a service must not start on a policy it cannot use.
   */
  static async start(options: PolicyWatcherOptions): Promise<PolicyWatcher> {
    if (await isPolicyDirectory(options.policyFile)) return PolicyWatcher.startDirectory(options);
    const signature = await statSignature(options.policyFile);
    const read = await readPolicyText(options.policyFile);
    const policy = await policyFromRead(read, options.policyFile);
    const findings = 'text' in read ? findingsOf(policy, read.text) : [];
    const watcher = new PolicyWatcher(options, policy, findings, signature, policy.version);
    watcher.logFindings();
    return watcher;
  }

  /** A policy directory: its files that pass are served, each refused one is logged (docs/policy.md). */
  private static async startDirectory(options: PolicyWatcherOptions): Promise<PolicyWatcher> {
    const folder = options.policyFile;
    const signature = await statSignature(folder);
    const listing = await readPolicyDirectory(folder);
    const judgement = await loadPolicyDirectory(
      folder,
      undefined,
      options.allowPolicyErrors === true ? { startGuard: 'off' } : {},
      listing,
    );
    const { inForce, verdicts } = judgement;
    const watcher = new PolicyWatcher(
      options,
      inForce.policy,
      inForce.findings,
      signature,
      listingKey(listing),
    );
    watcher.directory = { inForce, verdicts, logged: new Map(), fileResults: [] };
    watcher.inForce = verdicts.every((verdict) => verdict.inForce);
    watcher.logVerdicts('start', verdicts, listing, true, undefined);
    watcher.logFindings();
    return watcher;
  }

  /** A policy directory's files as last judged (the root first); undefined for a single policy file. */
  get fileVerdicts(): readonly FileVerdict[] | undefined {
    return this.directory?.verdicts;
  }

  /**
   * For a policy directory, what the last reload attempt did file by file: `ok` for each file put in force
   * (or removed), `error` for each refused, as logged; for `authz_policy_reloads_total`, since one attempt
   * may apply one team's file and refuse another's. Undefined for a single policy file.
   */
  get lastFileResults(): readonly ('ok' | 'error')[] | undefined {
    return this.directory?.fileResults;
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
    const folder = this.directory === undefined ? dirname(file) : file;
    try {
      this.watcher = watch(folder, { persistent: false }, (_event, name) => {
        // A ConfigMap swaps `..data`, not the file's own name: any change in the folder is worth a look.
        // In a policy directory every entry may be a policy file.
        if (this.directory !== undefined || isWatchedEvent(file, name)) this.schedule('watch');
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
    const seen = pollSaw(
      this.lastStat,
      await (this.directory === undefined ? statSignature : directorySignature)(this.options.policyFile),
    );
    this.lastStat = seen.lastStat;
    if (seen.schedule) this.schedule('poll');
  }

  /** `answerUnchanged`: log (and re-judge) content already judged; for a SIGHUP, not for file events. */
  private async reloadOnce(trigger: ReloadTrigger, answerUnchanged: boolean): Promise<ReloadResult> {
    const { logger, policyFile } = this.options;
    const content = await this.readContent();
    // The watcher and the poll often notice the same edit: judge each content once. SIGHUP always answers.
    const step = firstRead(content.key, this.lastSeen, this.current.version, answerUnchanged);
    if (step.kind === 'skip') return 'unchanged';
    const settled = await this.settle(content, step);
    if (settled === undefined) return 'unchanged'; // stopped while waiting
    this.lastSeen = settled.content.key;
    const { judgement } = settled;
    if (judgement?.kind === 'directory') {
      const result = this.applyDirectory(trigger, judgement.judgement, settled.content, answerUnchanged);
      this.options.onReload?.(result);
      return result;
    }
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
      // The file holds the version in force. A directory is judged all the same: its files' verdicts (a
      // refused file now restored) are what its logs and metrics report.
      if (step.kind !== 'compile' && !('listing' in content)) return { content };
      const judgement = await this.judge(content);
      const accepted =
        judgement.kind === 'accepted' || (judgement.kind === 'directory' && judgement.everyFileInForce);
      const next = judged(accepted, round, settleMs);
      if (next.kind !== 'wait') return { content, judgement };
      await (this.options.settleWait ?? delay)(next.ms);
      if (this.stopped) return undefined;
      const again = await this.readContent();
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
      if ('listing' in content) {
        const judgement = await loadPolicyDirectory(file, this.directory?.inForce, {}, content.listing);
        return {
          kind: 'directory',
          judgement,
          everyFileInForce: judgement.verdicts.every((verdict) => verdict.inForce),
        };
      }
      policy = await policyFromRead(content.read, file);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return {
        kind: 'refused',
        fields: { code: error.code, problems: error.problems.map(formatPolicyProblem) },
      };
    }
    const findings = 'read' in content && 'text' in content.read ? findingsOf(policy, content.read.text) : [];
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

  private async readContent(): Promise<FileContent> {
    if (this.directory === undefined) return readContent(this.options.policyFile);
    const listing = await readPolicyDirectory(this.options.policyFile);
    return { listing, key: listingKey(listing) };
  }

  /**
   * A policy directory judged: the merged policy of the files in force is put in force when it changed;
   * each file whose content (or outcome) changed since last logged gets a line naming it and its owner.
   */
  private applyDirectory(
    trigger: ReloadTrigger,
    judgement: DirectoryJudgement,
    content: FileContent,
    answerUnchanged: boolean,
  ): ReloadResult {
    const directory = this.directory;
    if (directory === undefined || !('listing' in content)) return 'unchanged';
    const previous = this.current;
    const { inForce, verdicts } = judgement;
    const changed = inForce.policy.version !== previous.version;
    directory.inForce = inForce;
    directory.verdicts = verdicts;
    const everyFileInForce = verdicts.every((verdict) => verdict.inForce);
    const wasInForce = this.inForce;
    this.inForce = everyFileInForce;
    if (changed) {
      this.current = inForce.policy;
      this.currentFindings = inForce.findings;
      this.options.onPolicy(inForce.policy);
    }
    const changes = changed ? describePolicyChange(policyChange(previous, inForce.policy)) : undefined;
    directory.fileResults = [];
    const logged = this.logVerdicts(trigger, verdicts, content.listing, answerUnchanged, changes);
    if (changed) this.logFindings();
    // A new policy in force is `ok` even if another file was refused meanwhile (lastFileResults counts both).
    if (changed) return 'ok';
    if (directory.fileResults.includes('error')) return 'error';
    if (!logged && answerUnchanged) {
      this.options.logger.info(
        {
          event: 'policy_reload',
          result: 'unchanged',
          trigger,
          file: this.options.policyFile,
          policy_version: previous.version,
        },
        'policy directory unchanged',
      );
    }
    return everyFileInForce && !wasInForce ? 'restored' : 'unchanged';
  }

  /**
   * One `policy_reload` line per file whose content or outcome changed since its last line (every file
   * judged, for a SIGHUP or at start): `file`, `owner`, `result` (`ok`, `error`, `removed`), and for a
   * refusal `code`, `problems` and `serving` (what of the file stays in force: `last_good` or `none`).
   * Returns whether any line was written.
   */
  private logVerdicts(
    trigger: ReloadTrigger | 'start',
    verdicts: readonly FileVerdict[],
    listing: PolicyDirectoryListing,
    everyOne: boolean,
    changes: unknown,
  ): boolean {
    const directory = this.directory;
    if (directory === undefined) return false;
    const texts = new Map(
      'files' in listing ? listing.files.map((f) => [f.name, contentKey(f.read)] as const) : [],
    );
    let wrote = false;
    for (const verdict of verdicts) {
      const key = `${texts.get(verdict.name) ?? 'missing'} ${verdict.outcome}`;
      const before = directory.logged.get(verdict.name);
      directory.logged.set(verdict.name, key);
      // Back to its version in force after a refused or not admitted one: said once, as `restored`.
      const restored =
        verdict.outcome === 'unchanged' && before !== undefined && /( refused| not_admitted)$/.test(before);
      if (verdict.outcome === 'unchanged' && !restored && !(everyOne && trigger !== 'start')) continue;
      if (before === key && !everyOne) continue;
      wrote = true;
      this.logVerdict(trigger, verdict, changes, restored);
      if (trigger !== 'start' && !restored && verdict.outcome !== 'unchanged')
        directory.fileResults.push(
          verdict.outcome === 'refused' || verdict.outcome === 'not_admitted' ? 'error' : 'ok',
        );
    }
    for (const name of directory.logged.keys())
      if (!verdicts.some((verdict) => verdict.name === name)) directory.logged.delete(name);
    return wrote;
  }

  private logVerdict(
    trigger: ReloadTrigger | 'start',
    verdict: FileVerdict,
    changes: unknown,
    restored: boolean,
  ): void {
    const { logger } = this.options;
    const fields = {
      event: trigger === 'start' ? 'policy_load' : 'policy_reload',
      result: restored
        ? 'restored'
        : verdict.outcome === 'accepted' || verdict.outcome === 'unchanged'
          ? 'ok'
          : verdict.outcome === 'removed'
            ? 'removed'
            : 'error',
      trigger,
      file: verdict.file,
      role: verdict.role,
      ...(verdict.owner === undefined ? {} : { owner: verdict.owner }),
      services: verdict.services,
      ...(verdict.code === undefined
        ? {}
        : { code: verdict.code, problems: verdict.problems, serving: verdict.serving }),
      policy_version: this.current.version,
      ...(changes === undefined || verdict.outcome !== 'accepted' ? {} : { changes }),
    };
    if (verdict.outcome === 'refused' || verdict.outcome === 'not_admitted') {
      const stays =
        verdict.role === 'root'
          ? 'the root file in force stays; service files are judged against it'
          : verdict.serving === 'last_good'
            ? 'its last good version stays in force'
            : 'it has no version in force: its hosts are answered 503 until a good version is saved';
      logger.error(fields, `policy file refused (${verdict.owner ?? 'owner unknown'}); ${stays}`);
    } else if (verdict.outcome === 'removed') {
      logger.warn(fields, `policy file removed (${verdict.owner ?? 'owner unknown'}); its services are gone`);
    } else if (restored) {
      logger.info(
        fields,
        `policy file restored to the version in force (${verdict.owner ?? 'owner unknown'})`,
      );
    } else if (trigger !== 'start') {
      logger.info(
        fields,
        `policy file ${verdict.outcome === 'accepted' ? 'applied' : 'in force'} (${verdict.owner ?? 'owner unknown'})`,
      );
    }
  }

  /** Each finding of the policy now in force, once, at a level to match (accepted ones as information). */
  private logFindings(): void {
    const { logger, policyFile } = this.options;
    for (const finding of this.currentFindings) {
      const fields = {
        event: 'policy_finding',
        code: finding.code,
        finding_level: finding.level,
        file:
          finding.line > 0 ? `${finding.file ?? policyFile}:${finding.line}` : (finding.file ?? policyFile),
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
  return { read, key: contentKey(read) };
}

/** The policy version is the hash of its text: the same text means the same policy. */
function contentKey(read: TextFileRead): string {
  return 'text' in read ? policyVersion(read.text) : `unreadable: ${read.problem}`;
}

/** A directory's content key: the version of the merged policy, were every file of it in force. */
function listingKey(listing: PolicyDirectoryListing): string {
  if ('problem' in listing) return `unreadable: ${listing.problem}`;
  return directoryVersion(listing.files);
}

/** Every entry's stat, so that an edited, added, removed or swapped (`..data`) file shows. */
async function directorySignature(folder: string): Promise<string> {
  const names = await readdir(folder).catch(() => undefined);
  if (names === undefined) return 'missing';
  const stats = await Promise.all(
    names.sort().map(async (name) => `${name}=${await statSignature(join(folder, name))}`),
  );
  return stats.join('|');
}

/** stat follows symlinks, so a swapped ConfigMap target shows as a new inode. */
async function statSignature(file: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  return info === undefined ? 'missing' : `${info.ino}:${info.size}:${info.mtimeMs}`;
}
