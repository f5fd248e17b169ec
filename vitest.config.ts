import { defineConfig } from 'vitest/config';

// Suites that start servers or processes. They bind free ports, but Envoy and Chromium start-up is CPU-heavy
// on a 2-core machine: one file at a time (`fileParallelism: false`), with room for start-up. The timeouts
// are guards against a hang, not measures: a loaded machine may take seconds to start each process.
// `expect.poll` waits for a condition (a page's text, a log line): its default of 1 s is a guess at how fast
// the machine is, which a loaded one misses; the condition, not the clock, ends the wait.
const oneFileAtATime = {
  fileParallelism: false,
  testTimeout: 60_000, // 60 seconds
  hookTimeout: 120_000, // 2 minutes
  expect: { poll: { timeout: 15_000 } }, // 15 seconds
} as const;

// The suites that run tools built from the Go module proxy (kustomize, manifest-check, promtool, the
// OpenTelemetry Collector: scripts/install-go-tools.sh), and Keycloak, which the same background job
// installs. They form the last project, `go-tools`, so that those builds, which `npm test`'s pretest starts
// in the background at low priority, take the CPU the suites before leave idle rather than delaying them;
// its setup file waits for the builds to end.
const GO_TOOL_SUITES = [
  'test/integration/deploy-agreement.test.ts',
  'test/integration/deploy-manifests.test.ts',
  'test/integration/deploy-monitoring.test.ts',
  'test/integration/kit-otel-collector.test.ts',
  'test/integration/monitoring-metrics.test.ts',
  'test/integration/monitoring-rules.test.ts',
  'test/e2e/traces-through-envoy.test.ts',
  'test/e2e/keycloak-through-envoy.test.ts',
];

// Five projects; `vitest run` runs them all, `vitest run --project unit` one of them.
// Projects run in groups by `sequence.groupOrder`, lowest first, each group after the previous one has
// finished (vitest 4: projects with the same order would run at the same time). So the parallel unit files
// run first, then integration, e2e, browser and go-tools, one file at a time each: no two heavy suites
// overlap.
// `benchmark.include` is set in every project: its default would find bench/ in each of them.
export default defineConfig({
  test: {
    projects: [
      {
        // Pure code: no socket, no child process, no Envoy, Chromium or build (`dist/`); files run in parallel.
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Its group runs alone, so one worker per core (vitest's default keeps a core free: one worker on 2).
          maxWorkers: '100%',
          benchmark: { include: [] },
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Real gRPC and HTTP on port 0, and the CLI as a child process.
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: GO_TOOL_SUITES,
          benchmark: { include: [] },
          sequence: { groupOrder: 1 },
          ...oneFileAtATime,
        },
      },
      {
        // Through the real Envoy binary (`npm run envoy:install`) and the build (`npm run build`).
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: GO_TOOL_SUITES,
          // In-process micro benchmarks (bench/route-table.bench.ts: `npx vitest bench --run --project e2e`),
          // never part of `npm test`. `npm run bench` is bench/run-bench.ts, a plain script (docs/performance.md).
          benchmark: { include: ['bench/**/*.bench.ts'] },
          sequence: { groupOrder: 2 },
          ...oneFileAtATime,
        },
      },
      {
        // The web app in real Chromium (`npm run browser:install`).
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          benchmark: { include: [] },
          sequence: { groupOrder: 3 },
          ...oneFileAtATime,
        },
      },
      {
        // Integration and end-to-end suites that need the Go-built tools (GO_TOOL_SUITES above), last.
        test: {
          name: 'go-tools',
          include: GO_TOOL_SUITES,
          setupFiles: ['test/kit/go-tools-ready.ts'],
          benchmark: { include: [] },
          sequence: { groupOrder: 4 },
          ...oneFileAtATime,
        },
      },
    ],
  },
});
