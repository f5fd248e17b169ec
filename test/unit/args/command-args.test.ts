import { describe, expect, it } from 'vitest';
import { parseFlags, parseOpsArgs } from '../../../src/args/parse-command-args.js';
import { usageErrorFrom } from '../../kit/usage-error-from.js';

const CHECK_POLICY = { json: { type: 'boolean' }, strict: { type: 'boolean' } } as const;
const SERVE = {
  policy: { type: 'string' },
  listen: { type: 'string' },
  'log-level': { type: 'string' },
} as const;
const ONE_FILE = { min: 1, max: 1, name: 'FILE' };

describe('an unknown flag', () => {
  it.each([
    ['--polcy', 'FILE', '--policy'],
    ['--plicy=x.yaml', undefined, '--policy'],
    ['--lsiten', '127.0.0.1:0', '--listen'],
    ['--log', 'debug', '--log-level'],
    ['--loglevel', 'debug', '--log-level'],
  ])('%s: names it and suggests the nearest flag of the command', (flag, value, meant) => {
    const error = usageErrorFrom(() => parseFlags(value === undefined ? [flag] : [flag, value], SERVE));
    expect(error.message).toBe(`unknown option "${flag.split('=')[0]}"; did you mean "${meant}"?`);
  });

  it('lists the flags the command takes when none is near', () => {
    const error = usageErrorFrom(() => parseOpsArgs(['policy.yaml', '--verbose'], CHECK_POLICY, ONE_FILE));
    expect(error.message).toBe('unknown option "--verbose" (options: --json, --strict)');
    expect(usageErrorFrom(() => parseOpsArgs(['-x'], CHECK_POLICY, ONE_FILE)).message).toBe(
      'unknown option "-x" (options: --json, --strict)',
    );
  });

  it('says so for a command that takes no flags', () => {
    const error = usageErrorFrom(() => parseOpsArgs(['--json', 'a.test.yaml'], {}, ONE_FILE));
    expect(error.message).toBe('unknown option "--json" (it takes no options)');
  });

  it("keeps node's message, which names the flag, for other mistakes", () => {
    expect(usageErrorFrom(() => parseFlags(['--listen'], SERVE)).message).toMatch(/--listen/);
    expect(usageErrorFrom(() => parseOpsArgs(['--json=yes', 'a'], CHECK_POLICY, ONE_FILE)).message).toMatch(
      /--json/,
    );
  });
});
