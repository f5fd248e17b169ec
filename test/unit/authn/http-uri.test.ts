import { describe, expect, it } from 'vitest';
import { normalisedHttpUri } from '../../../src/authn/http-uri.js';

// The form RFC 9449 section 4.3 compares htu in: syntax-based and scheme-based normalisation (RFC 3986
// sections 6.2.2 and 6.2.3), without query and fragment.

describe('normalisedHttpUri', () => {
  it.each([
    ['an already normal URI', 'https://bank.example/transfer', 'https://bank.example/transfer'],
    ['http', 'http://127.0.0.1:8000/balance', 'http://127.0.0.1:8000/balance'],
    ['the scheme in upper case', 'HTTPS://bank.example/x', 'https://bank.example/x'],
    ['the host in mixed case', 'https://Bank.Example/x', 'https://bank.example/x'],
    ['the default https port', 'https://bank.example:443/x', 'https://bank.example/x'],
    ['the default http port', 'http://bank.example:80/x', 'http://bank.example/x'],
    ['all of these at once', 'HTTPS://Bank.Example:443/x', 'https://bank.example/x'],
    ['another port, kept', 'https://bank.example:8443/x', 'https://bank.example:8443/x'],
    ['the http port on https, kept', 'https://bank.example:80/x', 'https://bank.example:80/x'],
    ['an empty path', 'https://bank.example', 'https://bank.example/'],
    ['a query, dropped', 'https://bank.example/x?a=1&b=2', 'https://bank.example/x'],
    ['a fragment, dropped', 'https://bank.example/x#frag', 'https://bank.example/x'],
    ['an empty query', 'https://bank.example/x?', 'https://bank.example/x'],
    ['dot segments, removed', 'https://bank.example/a/./b/../c', 'https://bank.example/a/c'],
    ['a trailing slash, kept', 'https://bank.example/x/', 'https://bank.example/x/'],
    ['the path case, kept', 'https://bank.example/Transfer', 'https://bank.example/Transfer'],
    ['%7e decoded to ~', 'https://bank.example/%7ealice', 'https://bank.example/~alice'],
    ['%7E decoded to ~', 'https://bank.example/%7Ealice', 'https://bank.example/~alice'],
    ['~ as it is', 'https://bank.example/~alice', 'https://bank.example/~alice'],
    ['encoded letters and digits decoded', 'https://bank.example/%61%62%31', 'https://bank.example/ab1'],
    ['encoded - . _ decoded', 'https://bank.example/%2d%2E%5f', 'https://bank.example/-._'],
    [
      'an encoded reserved character, upper-cased',
      'https://bank.example/a%2fb',
      'https://bank.example/a%2Fb',
    ],
    ['an encoded space, kept', 'https://bank.example/a%20b', 'https://bank.example/a%20b'],
    ['a space, encoded', 'https://bank.example/a b', 'https://bank.example/a%20b'],
    ['UTF-8 escapes, upper-cased', 'https://bank.example/caf%c3%a9', 'https://bank.example/caf%C3%A9'],
    ['a non-ASCII letter, encoded', 'https://bank.example/café', 'https://bank.example/caf%C3%A9'],
    ['an encoded percent, not decoded twice', 'https://bank.example/%257e', 'https://bank.example/%257e'],
    ['an IDN host, in punycode', 'https://bücher.example/x', 'https://xn--bcher-kva.example/x'],
    ['an IPv6 host with the default port', 'https://[::1]:443/x', 'https://[::1]/x'],
    ['a trailing dot, kept (another name)', 'https://bank.example./x', 'https://bank.example./x'],
  ])('normalises %s: %s', (_case, text, normal) => {
    expect(normalisedHttpUri(text)).toBe(normal);
  });

  it.each([
    ['an empty string', ''],
    ['a relative reference', '/transfer'],
    ['not a URI', 'bank.example/transfer'],
    ['another scheme', 'ftp://bank.example/x'],
    ['a WebSocket URI', 'wss://bank.example/x'],
    ['a mailto URI', 'mailto:alice@bank.example'],
    ['user information', 'https://alice@bank.example/x'],
    ['user information with a password', 'https://alice:secret@bank.example/x'],
    ['an empty user with a password', 'https://:secret@bank.example/x'],
    ['no host', 'https://'],
    ['a port out of range', 'https://bank.example:70000/x'],
  ])('answers undefined for %s', (_case, text) => {
    expect(normalisedHttpUri(text)).toBeUndefined();
  });

  it.each([
    ['https://bank.example/~alice', 'HTTPS://BANK.EXAMPLE:443/%7Ealice?x#y'],
    ['https://bank.example/a%2Fb', 'https://bank.example/a%2fb'],
    ['https://bank.example/', 'https://bank.example'],
  ])('gives %s and %s the same form', (one, other) => {
    expect(normalisedHttpUri(one)).toBe(normalisedHttpUri(other));
  });

  it.each([
    ['/a/b', '/a%2Fb'],
    ['http://bank.example/x', 'https://bank.example/x'],
    ['https://bank.example/x', 'https://bank.example:8443/x'],
  ])('keeps %s and %s apart', (one, other) => {
    const base = 'https://bank.example';
    const full = (uri: string) => (uri.startsWith('/') ? `${base}${uri}` : uri);
    expect(normalisedHttpUri(full(one))).not.toBe(normalisedHttpUri(full(other)));
  });
});
