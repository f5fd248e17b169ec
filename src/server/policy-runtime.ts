import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import type { KeySetFetchEvent } from '../authn/issuer-keys.js';
import { createKeyRing } from '../authn/key-ring.js';
import type { FetchKeySet } from '../authn/read-key-set.js';
import type { ActivePolicy } from '../envoy/check-handler.js';
import { loadPolicy, MAX_POLICY_BYTES } from '../policy/load-policy.js';
import { formatPolicyProblem, PolicyError } from '../policy/policy-error.js';

/** What made a reload happen; logged with its result. */
export type ReloadTrigger = 'watch' | 'poll' | 'signal';
export type ReloadResult = 'ok' | 'unchanged' | 'error';

export interface PolicyRuntimeOptions {
  readonly policyFile: string;
  readonly logger: Logger;
  readonly fetchKeySet: FetchKeySet;
  readonly now: () => number;
  readonly onKeySetFetch?: (event: KeySetFetchEvent) => void;
  /** Called after every reload attempt that read a changed file (not for `unchanged`). */
  readonly onReload?: (result: 'ok' | 'error', active: ActivePolicy) => void;
}

/** How often the file is checked besides file-system events, which some mounts never deliver. */
const POLL_INTERVAL_MS = 1000; // 1 second
/** Editors write in bursts (truncate, write, rename): wait this long after the last event. */
const SETTLE_MS = 150;

/**
 * The policy in force, and its safe replacement. A new version is read, validated and compiled off to the
 * side and swapped in one assignment; a request reads `active` once and finishes on that version. A file
 * that does not compile never takes effect: the last good policy stays, and the error is logged with file,
 * line and path. Changes are noticed through file-system events on the folder (editors that save by
 * rename, Kubernetes ConfigMaps that swap a symlink), a once-a-second check of the file, and `reload()`
 * (SIGHUP); all of them end in the same content comparison, so nothing reloads twice.
 */
export class PolicyRuntime {
  private current: ActivePolicy;
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
    private readonly options: PolicyRuntimeOptions,
    initial: ActivePolicy,
    statSignature: string,
  ) {
    this.current = initial;
    this.lastStat = statSignature;
    this.lastSeenVersion = initial.policy.version;
  }

  /**
   * Loads the initial policy. @throws PolicyError: a service must not start on a policy it cannot use.
   */
  static async start(options: PolicyRuntimeOptions): Promise<PolicyRuntime> {
    const signature = await statSignature(options.policyFile);
    const policy = await loadPolicy(options.policyFile);
    const keyRing = createKeyRing(policy, keyRingDependencies(options));
    return new PolicyRuntime(options, { policy, keyRing }, signature);
  }

  /** The policy in force and its issuers' keys. Read once per request. */
  get active(): ActivePolicy {
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
    // The policy version is the hash of its text: the same bytes mean the same policy, nothing to do.
    const text = await readFile(policyFile).catch(() => undefined);
    const version = text !== undefined && text.length <= MAX_POLICY_BYTES ? versionOf(text) : undefined;
    if (version === this.current.policy.version) return 'unchanged';
    // The watcher and the poll often notice the same edit: judge each content once. SIGHUP always re-reads.
    if (version !== undefined && version === this.lastSeenVersion && trigger !== 'signal') return 'unchanged';
    if (version !== undefined) this.lastSeenVersion = version;
    try {
      const policy = await loadPolicy(policyFile);
      const keyRing = createKeyRing(policy, keyRingDependencies(this.options), this.current.keyRing);
      const previous = this.current.policy.version;
      this.current = { policy, keyRing }; // the swap: one assignment
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
      void keyRing.prefetch(); // new issuers' keys; unchanged ones are already cached
      this.options.onReload?.('ok', this.current);
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
          policy_version: this.current.policy.version,
        },
        'policy change refused; the previous policy stays in force',
      );
      this.options.onReload?.('error', this.current);
      return 'error';
    }
  }
}

function keyRingDependencies(options: PolicyRuntimeOptions) {
  return {
    fetchKeySet: options.fetchKeySet,
    now: options.now,
    ...(options.onKeySetFetch === undefined ? {} : { onFetch: options.onKeySetFetch }),
  };
}

/**
 * As the loader and `compilePolicy` compute `version`: the text decoded as UTF-8 (a leading byte order
 * mark dropped, as `loadPolicy` drops it), then the first 16 hex digits of its SHA-256.
 */
function versionOf(bytes: Buffer): string {
  return createHash('sha256').update(new TextDecoder('utf-8').decode(bytes)).digest('hex').slice(0, 16);
}

/** stat follows symlinks, so a swapped ConfigMap target shows as a new inode. */
async function statSignature(file: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  return info === undefined ? 'missing' : `${info.ino}:${info.size}:${info.mtimeMs}`;
}
