import { describe, expect, it } from 'vitest';
import { normalisedRequestHost } from '../../../src/authz/request-host.js';

/** A name of `length` characters: labels of 63 `a`s joined by dots, the last one shorter. */
function longName(length: number): string {
  const labels: string[] = [];
  let left = length;
  while (left > 0) {
    const label = 'a'.repeat(Math.min(63, left));
    labels.push(label);
    left -= label.length + 1; // and the dot before the next label
  }
  const name = labels.join('.');
  if (name.length !== length) throw new Error(`built ${name.length} characters, not ${length}`);
  return name;
}

describe('normalisedRequestHost', () => {
  it.each([
    ['a lower-case name, unchanged', 'bank.example', 'bank.example'],
    ['upper case, lowered (host names are case-insensitive)', 'Bank.EXAMPLE', 'bank.example'],
    ['a port, removed', 'bank.example:8443', 'bank.example'],
    ['a trailing dot, removed', 'bank.example.', 'bank.example'],
    ['a trailing dot and a port, both removed', 'BANK.example.:443', 'bank.example'],
    ['a single label', 'localhost', 'localhost'],
    ['a name with hyphens and digits', 'eu-1.bank2.example', 'eu-1.bank2.example'],
    ['an IPv4 address', '10.0.0.1', '10.0.0.1'],
    ['an IPv4 address with a port', '127.0.0.1:9001', '127.0.0.1'],
    ['an IPv6 literal with a port', '[::1]:8080', '[::1]'],
    ['an IPv6 literal without a port', '[2001:DB8::1]', '[2001:db8::1]'],
    ['a 253-character name', longName(253), longName(253)],
    ['a 253-character name with a trailing dot and a port', `${longName(253)}.:65535`, longName(253)],
  ])('normalises %s', (_case, value, expected) => {
    expect(normalisedRequestHost(value)).toBe(expected);
  });

  it.each([
    ['no host at all', undefined],
    ['an empty host', ''],
    ['a space inside', 'bank example'],
    ['a leading space', ' bank.example'],
    ['an underscore', 'bank_api.example'],
    ['an empty label', 'a..b'],
    ['two trailing dots', 'bank.example..'],
    ['only a dot', '.'],
    ['a leading dot', '.bank.example'],
    ['a label starting with a hyphen', '-bank.example'],
    ['a label of 64 characters', `${'a'.repeat(64)}.example`],
    ['a 254-character name', longName(254)],
    ['a colon with no port', 'bank.example:'],
    ['a port that is not a number', 'bank.example:abc'],
    ['a port of six digits', 'bank.example:123456'],
    ['two ports', 'bank.example:80:80'],
    ['userinfo', 'alice@bank.example'],
    ['a path', 'bank.example/balance'],
    ['a wildcard', '*.bank.example'],
    ['non-ASCII', 'bänk.example'],
    ['an IPv6 literal without its closing bracket', '[::1'],
    ['an IPv6 literal with text after it', '[::1]x'],
    ['an IPv6 literal with letters beyond hex', '[::g]'],
  ])('refuses %s: undefined, which no service with hosts claims', (_case, value) => {
    expect(normalisedRequestHost(value)).toBeUndefined();
  });
});
