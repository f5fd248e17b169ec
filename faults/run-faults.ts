import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import * as path from 'node:path';
import { pinThisProcess, planCpus, repoRoot } from '../test/kit/process.js';
import { faultProfile } from './fault-profile.js';
import { failedChecks, markdownTable, type ScenarioResult } from './figures.js';
import { scenariosOf } from './scenarios.js';

// `npm run faults` (issue 11): each scenario runs real Envoy (envoy/envoy.yaml, ports changed), the built
// `authz serve` and `authz bank`, and a JWKS endpoint with faults on demand, sends a steady stream of valid
// and invalid requests through Envoy, and prints one line of figures; a Markdown table at the end. Exit 1
// when a scenario misses a requirement. See docs/reliability.md.
//
// Environment:
//   FAULTS_PROFILE  full (default: about 20 minutes, the soak alone 10) or short (about 2 minutes, as
//                   test/e2e/faults-short.test.ts runs it)
//   FAULTS_SCALE    multiplies the timed parts (fault phases, soak, flood), e.g. 0.25; default 1
//   FAULTS_ONLY     scenario numbers to run, e.g. 1,4; default all
//   FAULTS_TARGET   a checkout whose built dist/ runs authz and the bank (default: this one), e.g. a
//                   worktree of an older commit, to show a fault before and after a fix
//   ENVOY_BIN       the Envoy binary (default .tools/bin/envoy)

const profile = faultProfile(
  process.env['FAULTS_PROFILE'] || 'full',
  Number(process.env['FAULTS_SCALE'] || '1'),
);
const only = (process.env['FAULTS_ONLY'] ?? '')
  .split(',')
  .filter((item) => item.trim() !== '')
  .map(Number);
const selected = scenariosOf(profile).filter(
  (scenario) => only.length === 0 || only.includes(scenario.number),
);
if (selected.length === 0)
  throw new Error(
    `FAULTS_ONLY: "${process.env['FAULTS_ONLY']}" names no scenario of the ${profile.name} profile`,
  );

const target = path.resolve(process.env['FAULTS_TARGET'] || repoRoot);
const progress = (message: string): void => void process.stderr.write(`${message}\n`);

function commit(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: target,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' plus uncommitted changes' : ''}`;
  } catch {
    return 'not a git checkout';
  }
}

// As the bench does: this process (traffic, JWKS endpoint) on CPU 0, the servers on CPU 1.
const cores = availableParallelism();
const cpus = planCpus();
const serversOn = cpus?.server;
if (cpus !== undefined) pinThisProcess(cpus.load);

console.log(
  `# Fault suite (${profile.name} profile${process.env['FAULTS_SCALE'] ? `, scale ${process.env['FAULTS_SCALE']}` : ''})`,
);
console.log('');
console.log(`- date: ${new Date().toISOString()}`);
console.log(`- authz and bank: ${target}, ${commit()}, its built dist/`);
console.log(
  `- machine: ${cores} cores, load average ${loadavg()[0]!.toFixed(2)}; ` +
    (serversOn === undefined ? 'not pinned' : `traffic on CPU 0, Envoy, authz and bank on CPU ${serversOn}`),
);
console.log(`- traffic: ${profile.rate} requests/s through Envoy, open loop`);
console.log('');

const results: ScenarioResult[] = [];
const couldNotRun: number[] = [];
for (const scenario of selected) {
  progress(`S${scenario.number} ${scenario.title}...`);
  try {
    const result = await scenario.run({ profile, target, progress });
    results.push(result);
    const failed = failedChecks(result);
    console.log(
      `S${result.number} ${result.title}: ${result.line} — ${failed.length === 0 ? 'met' : 'NOT MET'}`,
    );
    for (const text of failed) console.log(`    not met: ${text}`);
  } catch (error) {
    const message = `S${scenario.number} ${scenario.title}: could not run: ${(error as Error).stack ?? String(error)}`;
    couldNotRun.push(scenario.number);
    console.log(message);
  }
}

console.log('');
console.log(markdownTable(results));
const failing = results.filter((result) => failedChecks(result).length > 0);
if (failing.length > 0 || couldNotRun.length > 0) {
  console.log('');
  console.log(
    `Not met: ${[...failing.map((result) => result.number), ...couldNotRun].map((n) => `S${n}`).join(', ')}`,
  );
  process.exitCode = 1;
}
