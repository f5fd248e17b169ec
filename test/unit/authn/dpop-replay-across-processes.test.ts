import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DpopNonces } from '../../../src/authn/dpop-nonces.js';
import { MemoryReplayStore } from '../../../src/authn/dpop-replay-store.js';

// What docs/sender-constraints.md, "Replays, workers and replicas", says about several processes (workers,
// replicas), held against the code: with the memory store each process has its own, so a proof one accepted
// is fresh to another; a nonce from a shared key is accepted by every holder of the key, and says nothing about which
// proofs were seen.

const T0 = Date.UTC(2030, 0, 1);
const WINDOW_MS = 60_000;
const LIMITS = { total: 1000, perKey: 1000, perSubject: 1000 };
const PROOF = { keyThumbprint: 'jkt', jti: 'jti', issuedAtMs: T0, acceptableUntilMs: T0 + WINDOW_MS };
const KEY = Buffer.alloc(32, 7);

describe('DPoP replays across processes', () => {
  it('a jti one process accepted is fresh to another: replay detection is per process', () => {
    const [first, second] = [new MemoryReplayStore(), new MemoryReplayStore()];
    expect(first.claim(PROOF, T0, LIMITS)).toEqual({ kind: 'fresh' });
    expect(first.claim(PROOF, T0 + 1, LIMITS)).toEqual({ kind: 'replayed' });
    expect(second.claim(PROOF, T0 + 1, LIMITS)).toEqual({ kind: 'fresh' });
  });

  it("a nonce one process issued is accepted by another with the same key, and by none with another's", () => {
    const nonce = new DpopNonces(KEY).issue('bank', T0);
    expect(new DpopNonces(KEY).accepts(nonce, 'bank', T0 + 1000, 60)).toBe(true);
    expect(new DpopNonces(Buffer.alloc(32, 8)).accepts(nonce, 'bank', T0 + 1000, 60)).toBe(false);
  });

  it('docs/sender-constraints.md says the memory store is per process, Redis shared, and nonces change neither', () => {
    const text = readFileSync(new URL('../../../docs/sender-constraints.md', import.meta.url), 'utf8');
    const start = text.indexOf('## Replays, workers and replicas');
    expect(start).toBeGreaterThan(-1);
    const section = text.slice(start, text.indexOf('\n## ', start + 1)).replace(/\s+/g, ' ');
    expect(section).toMatch(/`replay_store: \{ type: memory \}` replay detection is per process/);
    expect(section).toMatch(/accepted once more by each other process/);
    // The shared store's side: test/integration/redis-replay-store.test.ts and test/e2e/replicas-through-envoy.
    expect(section).toMatch(/a proof is accepted once by the whole fleet/);
    expect(section).toMatch(/Server nonces do not close that gap/);
    expect(section).not.toMatch(/stateless answer/);
  });
});
