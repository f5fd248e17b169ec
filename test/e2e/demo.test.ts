import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, whenClosed } from '../browser/chromium.js';
import { repoRoot } from '../kit/process.js';

// `npm run demo` as a new user runs it: the fixed ports of envoy/envoy.yaml, the repo's policy.yaml and the
// development key. The test reads the printed tokens and replays the printed scenario, then presses Ctrl-C.

const DEMO = path.join(repoRoot, 'dist', 'demo', 'walkthrough', 'run-demo.js');
const API = 'http://127.0.0.1:8000';

let demo: ChildProcess;
let output = '';
let tokens: { view: string; transfer: string };

beforeAll(async () => {
  demo = spawn(process.execPath, [DEMO], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  demo.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + 40_000;
  while (!output.includes('Press Ctrl-C')) {
    if (demo.exitCode !== null) throw new Error(`the demo exited (${demo.exitCode}):\n${output}`);
    if (Date.now() > deadline) throw new Error(`the demo did not get ready:\n${output}`);
    await delay(100);
  }
  const view = /^VIEW_TOKEN='([^']+)'$/m.exec(output)?.[1];
  const transfer = /^TRANSFER_TOKEN='([^']+)'$/m.exec(output)?.[1];
  if (view === undefined || transfer === undefined)
    throw new Error(`no tokens in the demo output:\n${output}`);
  tokens = { view, transfer };
});

afterAll(() => {
  if (demo.exitCode === null) demo.kill('SIGKILL');
});

const transfer = (token: string) =>
  fetch(`${API}/transfer`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ to: 'bob', amount: 25 }),
  });

describe('npm run demo', () => {
  it('prints curl commands for the four steps of the scenario', () => {
    expect(output.match(/^curl /gm)).toHaveLength(4);
    expect(output).toContain(`${API}/balance`);
  });

  it('answers the printed scenario: 401, 200, then 401 with a DPoP challenge for both transfers', async () => {
    expect((await fetch(`${API}/balance`)).status).toBe(401);
    const balanceNow = async () => {
      const balance = await fetch(`${API}/balance`, { headers: { authorization: `Bearer ${tokens.view}` } });
      expect(balance.status).toBe(200);
      return ((await balance.json()) as { balance: number }).balance;
    };
    const before = await balanceNow();
    // /transfer takes only DPoP-bound tokens with a proof (policy.yaml): a bearer token, however strong,
    // moves no money.
    for (const token of [tokens.view, tokens.transfer]) {
      const refused = await transfer(token);
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toMatch(/^DPoP /);
    }
    expect(await balanceNow()).toBe(before);
  });

  it('runs the step-up client against it: npm run demo:stepup', async () => {
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'demo-client', '--otp', 'auto'],
      {
        encoding: 'utf8',
        timeout: 60_000, // a guard against a hang: the demo client runs its whole story
      },
    );
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/access token: sub=alice scope="transfer:funds" .* token_type=DPoP cnf\.jkt=/);
    expect(run.stdout).toContain("alice's balance moved by 25");
    // The new step: the stolen transfer token, replayed without its key, is refused twice.
    expect(run.stdout).toContain('9. The stolen transfer token');
    expect(run.stdout).toMatch(/Both replays refused; the balance is unchanged \(\d+\)/);
    expect(run.stdout).not.toMatch(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/);
    // The demo prints the IdP's log line as it arrives: read once this event loop, held by spawnSync, runs.
    await expect.poll(() => output).toMatch(/dev-idp: MFA code for alice: \d{6} \(development only\)/);
  });

  it('ends with the address of the web app', () => {
    const ready = output.slice(output.indexOf('Demo ready'));
    const lines = ready.split('\n').filter((line) => line.trim() !== '');
    const open = lines.findIndex((line) => line.startsWith('open '));
    expect(lines[open]).toBe(`open ${API}/app/`);
    // Nothing of the demo's own after it, only the live decision lines.
    expect(lines.slice(open + 1).every((line) => line.startsWith('  '))).toBe(true);
  });

  it('the web app at that address signs in with the demo IdP in Chromium and shows the balance', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`${API}/app/`);
      await page.locator('#prompt').waitFor({ state: 'visible' });
      const [popup] = await Promise.all([page.waitForEvent('popup'), page.click('#prompt-continue')]);
      // The demo's IdP registers http://127.0.0.1:8000/app/callback.html by default.
      await popup.waitForURL((url) => url.href.startsWith('http://127.0.0.1:9000/authorize?'));
      await popup.fill('#username', 'alice');
      await popup.fill('#password', 'alice-password');
      const closed = whenClosed(popup);
      await popup.click('#login');
      await closed;
      await expect.poll(() => page.textContent('#last-status')).toBe('200');
      expect(await page.textContent('#who')).toBe('Signed in as alice');
    } finally {
      await browser.close();
    }
  });

  it('shows each decision as it happens', () => {
    expect(output).toMatch(/authz: deny 403 insufficient_scope POST \/transfer sub=alice/);
    expect(output).toMatch(/authz: deny 401 binding_dpop_scheme_required POST \/transfer sub=alice/);
    expect(output).toMatch(/authz: deny 401 binding_dpop_key_mismatch POST \/transfer sub=alice/);
  });

  it('stops everything on Ctrl-C', async () => {
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(fetch(`${API}/balance`)).rejects.toThrow();
  });
});
