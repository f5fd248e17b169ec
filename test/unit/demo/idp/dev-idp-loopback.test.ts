import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../../../src/demo/idp/loopback.js';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1'])('%s is loopback', (address) => {
    expect(isLoopbackAddress(address)).toBe(true);
  });

  it.each([
    '10.0.0.1',
    '192.0.2.2',
    '::ffff:10.0.0.1',
    'fe80::1',
    '::',
    '0.0.0.0',
    '',
    'localhost',
    undefined,
  ])('%s is not', (address) => {
    expect(isLoopbackAddress(address)).toBe(false);
  });
});
