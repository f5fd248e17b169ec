import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, httpCheckRequest, policyYaml, writeTextFile } from '../kit/authz-harness.js';
import {
  CLI_BUILDS,
  killAllClis,
  missingBuild,
  startCli,
  stopCli,
  waitForStarted,
} from '../kit/cli-child.js';
import { outcomeOf } from '../kit/policy-server.js';
import { openSeparateConnection } from '../kit/separate-connection.js';
import { generateTestKey } from '../kit/tokens.js';

/*
 * `authz serve` writes decision lines through a buffered, asynchronous destination (src/log/
 * buffered-destination.ts). SIGTERM must still leave every one of them on stdout, whole: the server closes,
 * then the buffer is flushed, then the process exits.
 */

describe('decision lines on SIGTERM (authz serve, one process)', () => {
  let temp: { dir: string; remove: () => Promise<void> };

  beforeAll(async () => {
    if (!existsSync(CLI_BUILDS.full)) throw new Error(missingBuild(CLI_BUILDS.full));
    temp = await createTempDir('authz-log-sigterm-');
  });

  afterAll(async () => {
    killAllClis();
    await temp?.remove();
  });

  it('writes every decision of a burst before exiting 0, each line whole JSON', async () => {
    const key = await generateTestKey('sigterm-key');
    const jwksFile = await writeTextFile(temp.dir, 'jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    const policyFile = await writeTextFile(temp.dir, 'policy.yaml', policyYaml({ keys: { jwksFile } }));
    const run = startCli(['serve', '--policy', policyFile, '--listen', '127.0.0.1:0'], { cwd: temp.dir });
    const port = (await waitForStarted(run))['port'] as number;
    const connections = Array.from({ length: 4 }, () => openSeparateConnection(port));

    // Denials (always logged), 100 on each of 4 connections at once; SIGTERM as soon as the last answer is in.
    const sent: string[] = [];
    let outcomes: string[];
    try {
      outcomes = await Promise.all(
        connections.flatMap((connection) =>
          Array.from({ length: 100 }, () => {
            const id = `burst-${sent.length + 1}`;
            sent.push(id);
            return connection
              .check(httpCheckRequest({ id, method: 'POST', path: '/transfer' }))
              .then(outcomeOf);
          }),
        ),
      );
    } finally {
      for (const connection of connections) connection.close();
    }
    const finished = await stopCli(run);

    expect(new Set(outcomes)).toEqual(new Set(['deny 401']));
    expect(finished.code).toBe(0);
    expect(finished.stderr).toBe('');
    const lines = run.logLines(); // parses every line: a cut or merged line fails here
    const decisions = lines.filter((line) => line['event'] === 'decision');
    expect(decisions).toHaveLength(sent.length);
    expect(new Set(decisions.map((line) => line['request_id']))).toEqual(new Set(sent));
    expect(lines.at(-1)).toMatchObject({ event: 'stopped' });
  });
});
