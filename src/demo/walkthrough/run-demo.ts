import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { ensureDevCertificates } from '../dev-tls/dev-certificates.js';
import { DEFAULT_DEV_DIR, ensureDevKeys } from '../dev-token/dev-keys.js';
import { mintDevToken } from '../dev-token/mint-dev-token.js';

// `npm run demo`: Envoy (envoy/envoy.yaml as is), the authz server (policy.yaml), the bank with its web app
// (dist/web under /app/) and the development identity provider, on the ports envoy.yaml and policy.yaml
// name, with ready-to-paste curl commands and the app's address last. Development only.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
// Envoy (plain and TLS), admin, authz and bank as in envoy/envoy.yaml; the dev IdP as policy.yaml names it.
const PORTS = { envoy: 8000, envoyTls: 8443, admin: 9901, authz: 9001, bank: 8080, idp: 9000 } as const;
const READY_TIMEOUT_MS = 30_000;

const children: { name: string; child: ChildProcess }[] = [];

function envoyBinary(): string {
  const binary = process.env['ENVOY_BIN'] ?? join(ROOT, '.tools', 'bin', 'envoy');
  if (!existsSync(binary))
    throw new Error(`Envoy is not installed at ${binary}: run "npm run envoy:install"`);
  return binary;
}

async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    const probe = createServer();
    probe.once('error', () =>
      fail(new Error(`port ${port} (${what}) is in use: stop whatever holds it first`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => done()));
  });
}

function start(
  name: string,
  command: string,
  args: string[],
  logDir: string,
  onLine?: (line: string) => void,
) {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(logDir, `${name}.log`));
  let pending = '';
  const forward = (chunk: Buffer) => {
    log.write(chunk);
    if (onLine === undefined) return;
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(onLine);
  };
  child.stdout?.on('data', forward);
  child.stderr?.on('data', forward);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`\n${name} exited unexpectedly (${signal ?? code}); see ${join(logDir, `${name}.log`)}`);
      void stopAll(1);
    }
  });
  children.push({ name, child });
}

/** The one-time codes the development identity provider "sends to the user's phone". */
function showMfaCode(line: string): void {
  if (!line.includes('"event":"mfa_code"')) return;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    console.log(
      `  dev-idp: MFA code for ${String(entry['user'])}: ${String(entry['code'])} (development only)`,
    );
  } catch {
    // not a log line
  }
}

/** One readable line per authz decision, from its JSON log. */
function showDecision(line: string): void {
  if (!line.startsWith('{')) return;
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry['event'] !== 'decision') return;
    const who = entry['subject'] === null ? '' : ` sub=${String(entry['subject'])}`;
    console.log(
      `  authz: ${String(entry['decision'])} ${String(entry['status'])} ${String(entry['reason'])} ` +
        `${String(entry['method'])} ${String(entry['path'])}${who}`,
    );
  } catch {
    // not a log line
  }
}

async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline)
      throw new Error(`${what} did not become ready within ${READY_TIMEOUT_MS / 1000} s`);
    await delay(100);
  }
}

let stopping = false;
async function stopAll(code: number): Promise<never> {
  stopping = true;
  for (const { child } of children) child.kill('SIGTERM');
  await Promise.all(
    children.map(
      ({ child }) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
        }),
    ),
  );
  process.exit(code);
}

async function main(): Promise<void> {
  const envoy = envoyBinary();
  for (const [what, port] of Object.entries(PORTS)) await assertPortFree(port, what);
  // policy.yaml reads .authz-dev/jwks.json next to itself, so the demo always uses that folder.
  const devDir = join(ROOT, DEFAULT_DEV_DIR);
  const keys = await ensureDevKeys(devDir);
  // Envoy's TLS listener (envoy.yaml) reads .authz-dev/tls/ relative to its working directory, ROOT, and
  // does not start without it: make the development CA and certificates first (reused while valid).
  await ensureDevCertificates(devDir);
  const logDir = join(devDir, 'demo-logs');
  await mkdir(logDir, { recursive: true });

  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));

  let authzStarted = false;
  let idpStarted = false;
  // The bank serves the built web app; naming the folder makes a missing build an error, not a 404.
  start(
    'bank',
    process.execPath,
    [CLI, 'bank', '--listen', `127.0.0.1:${PORTS.bank}`, '--app-dir', join(ROOT, 'dist', 'web')],
    logDir,
  );
  start(
    'dev-idp',
    process.execPath,
    [CLI, 'dev-idp', '--listen', `127.0.0.1:${PORTS.idp}`],
    logDir,
    (line) => {
      if (line.includes('"event":"started"')) idpStarted = true;
      showMfaCode(line);
    },
  );
  start(
    'envoy',
    envoy,
    ['-c', join(ROOT, 'envoy', 'envoy.yaml'), '--disable-hot-restart', '--log-level', 'warn'],
    logDir,
  );

  // authz fetches the dev IdP's keys at start-up: start it once the IdP answers.
  await waitFor('dev-idp', async () => idpStarted);
  start(
    'authz',
    process.execPath,
    [CLI, 'serve', '--policy', join(ROOT, 'policy.yaml'), '--listen', `127.0.0.1:${PORTS.authz}`],
    logDir,
    (line) => {
      if (line.includes('"event":"started"')) authzStarted = true;
      showDecision(line);
    },
  );
  await waitFor('authz', async () => authzStarted);
  await waitFor('bank', async () => (await fetch(`http://127.0.0.1:${PORTS.bank}/healthz`)).ok);
  await waitFor(
    'envoy',
    async () => (await (await fetch(`http://127.0.0.1:${PORTS.admin}/ready`)).text()).trim() === 'LIVE',
  );

  const ttlSeconds = 3600;
  const view = await mintDevToken(keys, { scopes: ['view:balance'], subject: 'alice', ttlSeconds });
  // As the identity provider would issue it after multi-factor authentication.
  const transfer = await mintDevToken(keys, {
    scopes: ['view:balance', 'transfer:funds'],
    subject: 'alice',
    ttlSeconds,
    acr: 'urn:bank:mfa',
    amr: ['pwd', 'mfa'],
  });
  const api = `http://127.0.0.1:${PORTS.envoy}`;
  console.log(`
Demo ready: Envoy on ${api} -> authz (gRPC ${PORTS.authz}) -> bank (${PORTS.bank}). Logs: ${logDir}
Tokens are signed by the DEVELOPMENT key in ${devDir} and expire in ${ttlSeconds / 60} minutes.

VIEW_TOKEN='${view}'
TRANSFER_TOKEN='${transfer}'

# 1. No token: 401 with a Bearer challenge
curl -i ${api}/balance

# 2. A token with view:balance: 200 and alice's balance
curl -i -H "Authorization: Bearer $VIEW_TOKEN" ${api}/balance

# 3. The same token tries a transfer: 401 with a DPoP challenge: /transfer takes only DPoP-bound tokens
#    (RFC 9449), each call with a fresh proof signed by the key the token is bound to
curl -i -X POST -H "Authorization: Bearer $VIEW_TOKEN" -H 'content-type: application/json' -d '{"to":"bob","amount":25}' ${api}/transfer

# 4. A token with transfer:funds (granted after MFA at a real IdP), as a plain bearer token: 401 as well,
#    the balance does not move: a token alone, stolen or not, moves no money
curl -i -X POST -H "Authorization: Bearer $TRANSFER_TOKEN" -H 'content-type: application/json' -d '{"to":"bob","amount":25}' ${api}/transfer

The whole step-up loop with DPoP-bound tokens, and a stolen transfer token replayed without its key, with
the development identity provider on http://127.0.0.1:${PORTS.idp} (users alice / alice-password,
bob / bob-password; MFA codes appear below):
  npm run demo:stepup          (or: node dist/cli/main.js demo-client --otp prompt)

More tokens: node dist/cli/main.js dev-token --scope "view:balance" --sub bob
Press Ctrl-C to stop everything. Decisions and MFA codes appear below as they happen.

The bank in a browser: sign in as alice / alice-password, transfer, and confirm with the one-time code
the identity provider's page shows (a stand-in for a phone). The panel shows each status and challenge.
open ${api}/app/
`);
}

main().catch((error: unknown) => {
  console.error(`demo: ${(error as Error).message}`);
  void stopAll(1);
});
