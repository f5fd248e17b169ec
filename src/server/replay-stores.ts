import { MemoryReplayStore, type ReplayStore } from '../authn/dpop-replay-store.js';
import { RedisReplayStore, type RedisReplayStoreHooks } from '../authn/redis-replay-store.js';
import type { ReplayStoreSettings } from '../policy/compiled-policy.js';

/**
 * How long a store no longer named by the policy in force stays open: Checks that began under the previous
 * version may still claim in it, each for at most its `timeout` (at most 900 ms).
 */
const RETIRED_STORE_GRACE_MS = 2000;

/**
 * The replay stores of one process, which outlive policy versions: its own memory store (always there: the
 * default store, and the fallback of a shared one), and the Redis store the policy in force names, if any.
 * A reload that keeps `dpop.replay_store` as it was keeps the same store and connection; one that changes it
 * opens the new one and closes the old one after a grace period.
 */
export class ReplayStores {
  readonly local = new MemoryReplayStore();
  private shared: { readonly settings: string; readonly store: RedisReplayStore } | undefined;
  /** Stores no longer in force, each until its grace period ends. */
  private readonly retiring = new Set<RedisReplayStore>();

  constructor(private readonly hooks: RedisReplayStoreHooks) {}

  /** The store a policy version checks its proofs against. */
  forPolicy(settings: ReplayStoreSettings): ReplayStore {
    if (settings.type === 'memory') {
      this.retire();
      return this.local;
    }
    const key = JSON.stringify(settings);
    if (this.shared?.settings !== key) {
      this.retire();
      this.shared = { settings: key, store: new RedisReplayStore(settings, this.local, this.hooks) };
    }
    return this.shared.store;
  }

  /** Whether the store in force can be asked now: the memory store always can. */
  get up(): boolean {
    return this.shared?.store.up ?? true;
  }

  /** Resolves once the shared store's first connection attempt has ended (at once without one). */
  firstAttempt(): Promise<void> {
    return this.shared?.store.firstAttempt ?? Promise.resolve();
  }

  /** Closes every connection now, the retiring ones included. */
  async close(): Promise<void> {
    const stores = [...this.retiring, ...(this.shared === undefined ? [] : [this.shared.store])];
    this.shared = undefined;
    this.retiring.clear();
    await Promise.all(stores.map((store) => store.close()));
  }

  private retire(): void {
    const old = this.shared?.store;
    if (old === undefined) return;
    this.shared = undefined;
    this.retiring.add(old);
    setTimeout(() => {
      if (this.retiring.delete(old)) void old.close();
    }, RETIRED_STORE_GRACE_MS).unref();
  }
}
