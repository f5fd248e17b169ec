import { beforeAll, describe, expect, it } from 'vitest';
import { httpCheckRequest } from '../kit/authz-harness.js';
import { outcomeOf } from '../kit/policy-server.js';
import { parseJsonLines, requireBuild } from '../kit/process.js';
import { openSeparateConnection } from '../kit/separate-connection.js';
import { startServe, writeKeyAndPolicy } from '../kit/serve-process.js';
import { suiteTempDir } from '../kit/test-hooks.js';

/*
 * `authz serve` writes decision lines through a buffered, asynchronous destination (src/log/
 * buffered-destination.ts). SIGTERM must still leave every one of them on stdout, whole: the server closes,
 * then the buffer is flushed, then the process exits.
 */

describe('decision lines on SIGTERM (authz serve, one process)', () => {
  const temp = suiteTempDir('authz-log-sigterm-');

  beforeAll(() => requireBuild());

  it('writes every decision of a burst before exiting 0, each line whole JSON', async () => {
    const { policyFile } = await writeKeyAndPolicy(temp.dir, 'sigterm-key');
    const { process: run, port } = await startServe(policyFile, [], { cwd: temp.dir });
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
    const finished = await run.stop(12_000);

    expect(new Set(outcomes)).toEqual(new Set(['deny 401']));
    expect(finished.code).toBe(0);
    expect(finished.stderr).toBe('');
    const lines = parseJsonLines(finished.stdout); // parses every line: a cut or merged line fails here
    const decisions = lines.filter((line) => line['event'] === 'decision');
    expect(decisions).toHaveLength(sent.length);
    expect(new Set(decisions.map((line) => line['request_id']))).toEqual(new Set(sent));
    expect(lines.at(-1)).toMatchObject({ event: 'stopped' });
  });
});
