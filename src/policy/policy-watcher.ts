import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { CompiledPolicy } from './compiled-policy.js';
import { policyFromRead, readPolicyText } from './load-policy.js';
import { formatPolicyProblem, PolicyError } from './policy-error.js';
import { policyVersion } from './policy-version.js';

/** What made a reload happen; logged with its result. */
export type ReloadTrigger = 'watch' | 'poll' | 'signal';
export type ReloadResult = 'ok' | 'unchanged' | 'error';

export interface PolicyWatcherOptions {
  readonly policyFile: string;
  readonly logger: Logger;
  /**
   * A new compiled policy is ready: the subscriber puts it in force (with whatever it derives from it,
   * such as its issuers' keys) before the reload is logged and `onReload` is called. Must not throw.
   */
  readonly onPolicy: (policy: CompiledPolicy) => void;
  /** Called after every reload attempt that read a changed file (not for `unchanged`). */
  readonly onReload?: (result: 'ok' | 'error') => void;
}

/** How often the file is checked besides file-system events, which some mounts never deliver. */
const POLL_INTERVAL_MS = 1000; // 1 second
/** Editors write in bursts (truncate, write, rename): wait this long after the last event. */
const SETTLE_MS = 150;

/**
 * A policy file's life in a running service: the initial load, then its safe replacement. A new version is
 * read, validated and compiled off to the side and handed to `onPolicy` in one call; a file that does not
 * compile never takes effect: the last good policy stays, and the error is logged with file, line and
 * path. Changes are noticed through file-system events on the folder (editors that save by rename,
 * Kubernetes ConfigMaps that swap a symlink), a once-a-second check of the file, and `reload()` (SIGHUP);
 * all of them end in the same content comparison, so nothing reloads twice.
 */
export class PolicyWatcher {
  private current: CompiledPolicy;
  private running: Promise<ReloadResult> | undefined;
  private again = false;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  /** The file's stat as last seen by the poll; taken before the initial load, so no edit falls between. */
  private lastStat: string;
  /** The version of the last content a watch or poll reload looked at, accepted or refused. */
  private lastSeenVersion: string;

  private constructor(
    private readonly options: PolicyWatcherOptions,
    initial: CompiledPolicy,
    statSignature: string,
  ) {
    this.current = initial;
    this.lastStat = statSignature;
    this.lastSeenVersion = initial.version;
  }

  /**
   * Loads the initial policy; `onPolicy` is not called for it (read `policy`). Nothing is watched until
   * `watch()`. @throws PolicyError: a service must not start on a policy it cannot use.
   */
  static async start(options: PolicyWatcherOptions): Promise<PolicyWatcher> {
    const signature = await statSignature(options.policyFile);
    const policy = await policyFromRead(await readPolicyText(options.policyFile), options.policyFile);
    return new PolicyWatcher(options, policy, signature);
  }

  /** The policy in force. */
  get policy(): CompiledPolicy {
    return this.current;
  }

  /** Re-reads the file now. Concurrent calls share one reload, and a change during it triggers another. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = this.reloadOnce(trigger).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.reload(trigger);
      }
    });
    return this.running;
  }

  /** Starts watching the file (events on its folder plus a poll). */
  watch(): void {
    const file = this.options.policyFile;
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        // A ConfigMap swaps `..data`, not the file's own name: any change in the folder is worth a look.
        if (name === null || name === basename(file) || name.startsWith('..')) this.schedule('watch');
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

  /** Stops watching; the policy in force stays. */
  stop(): void {
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
    const signature = await statSignature(this.options.policyFile);
    if (signature === this.lastStat) return;
    this.lastStat = signature;
    this.schedule('poll');
  }

  private async reloadOnce(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { policyFile, logger } = this.options;
    // The policy version is the hash of its text: the same text means the same policy, nothing to do.
    const read = await readPolicyText(policyFile);
    const version = 'text' in read ? policyVersion(read.text) : undefined;
    if (version === this.current.version) return 'unchanged';
    // The watcher and the poll often notice the same edit: judge each content once. SIGHUP always re-reads.
    if (version !== undefined && version === this.lastSeenVersion && trigger !== 'signal') return 'unchanged';
    if (version !== undefined) this.lastSeenVersion = version;
    try {
      const policy = await policyFromRead(read, policyFile);
      const previous = this.current.version;
      this.current = policy;
      this.options.onPolicy(policy);
      logger.info(
        {
          event: 'policy_reload',
          result: 'ok',
          trigger,
          file: policyFile,
          policy_version: policy.version,
          previous,
        },
        'policy reloaded',
      );
      this.options.onReload?.('ok');
      return 'ok';
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      logger.error(
        {
          event: 'policy_reload',
          result: 'error',
          trigger,
          file: policyFile,
          code: error.code,
          problems: error.problems.map(formatPolicyProblem),
          policy_version: this.current.version,
        },
        'policy change refused; the previous policy stays in force',
      );
      this.options.onReload?.('error');
      return 'error';
    }
  }
}

/** stat follows symlinks, so a swapped ConfigMap target shows as a new inode. */
async function statSignature(file: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  return info === undefined ? 'missing' : `${info.ino}:${info.size}:${info.mtimeMs}`;
}
