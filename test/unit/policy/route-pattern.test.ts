import { describe, expect, it } from 'vitest';
import { compileRoutePattern, RoutePatternError } from '../../../src/policy/route-pattern.js';

/** Every [path, matches] pair for one pattern, as a table the failure message can show whole. */
function matching(pattern: string, paths: readonly string[]): Record<string, boolean> {
  const matches = compileRoutePattern(pattern);
  return Object.fromEntries(paths.map((path) => [path, matches(path)]));
}

describe('compileRoutePattern', () => {
  it('matches a literal pattern exactly and nothing else', () => {
    expect(
      matching('/balance', [
        '/balance',
        '/balance/',
        '/balance/x',
        '/balances',
        '/bal',
        '/',
        '',
        '/x/balance',
      ]),
    ).toEqual({
      '/balance': true,
      '/balance/': false,
      '/balance/x': false,
      '/balances': false,
      '/bal': false,
      '/': false,
      '': false,
      '/x/balance': false,
    });
  });

  it('matches the root pattern "/" against "/" only', () => {
    expect(matching('/', ['/', '', '/a', '//'])).toEqual({ '/': true, '': false, '/a': false, '//': false });
  });

  it('matches {name} against exactly one non-empty segment', () => {
    expect(
      matching('/accounts/{id}/balance', [
        '/accounts/42/balance',
        '/accounts/acc-1.x~y/balance',
        '/accounts//balance',
        '/accounts/1/2/balance',
        '/accounts/42/balance/',
        '/accounts/42',
        '/accounts/{id}/balance',
      ]),
    ).toEqual({
      '/accounts/42/balance': true,
      '/accounts/acc-1.x~y/balance': true,
      '/accounts//balance': false,
      '/accounts/1/2/balance': false,
      '/accounts/42/balance/': false,
      '/accounts/42': false,
      '/accounts/{id}/balance': true,
    });
  });

  it('matches a trailing {name} only when the segment is not empty', () => {
    expect(matching('/users/{user_id}', ['/users/alice', '/users/', '/users', '/users/alice/'])).toEqual({
      '/users/alice': true,
      '/users/': false,
      '/users': false,
      '/users/alice/': false,
    });
  });

  it('matches /** against zero or more further segments, but not a longer first segment', () => {
    expect(
      matching('/files/**', [
        '/files',
        '/files/',
        '/files/a',
        '/files/a/b',
        '/files/a/b/',
        '/filesx',
        '/file',
        '/x/files',
      ]),
    ).toEqual({
      '/files': true,
      '/files/': true,
      '/files/a': true,
      '/files/a/b': true,
      '/files/a/b/': true,
      '/filesx': false,
      '/file': false,
      '/x/files': false,
    });
  });

  it('matches "/**" alone against every path', () => {
    expect(matching('/**', ['/', '/a', '/a/b/c'])).toEqual({ '/': true, '/a': true, '/a/b/c': true });
  });

  it('combines a parameter with a rest', () => {
    expect(
      matching('/users/{id}/files/**', ['/users/7/files', '/users/7/files/a/b', '/users//files']),
    ).toEqual({
      '/users/7/files': true,
      '/users/7/files/a/b': true,
      '/users//files': false,
    });
  });

  it.each([
    ['/balance/', '/balance', false],
    ['/balance/', '/balance/', true],
    ['/balance', '/balance/', false],
    ['/accounts/{id}/', '/accounts/1/', true],
    ['/accounts/{id}/', '/accounts/1', false],
  ])('treats the trailing slash as significant: %s against %s is %s', (pattern, path, expected) => {
    expect(compileRoutePattern(pattern)(path)).toBe(expected);
  });

  it.each([
    ['/Balance', '/balance'],
    ['/balance', '/BALANCE'],
    ['/accounts/{id}/Balance', '/accounts/1/balance'],
    ['/Files/**', '/files/a'],
  ])('is case-sensitive: %s does not match %s', (pattern, path) => {
    expect(compileRoutePattern(pattern)(path)).toBe(false);
  });

  it.each([
    ['/a.b', '/aXb'],
    ['/a.b/{id}', '/aXb/1'],
    ['/a+b/{id}', '/aab/1'],
    ['/a+b/{id}', '/aaab/1'],
    ['/(a)/{id}', '/a/1'],
    ['/a$/{id}', '/a/1'],
    ['/v1.0/**', '/v1x0/x'],
  ])('treats regular-expression characters in %s literally: no match for %s', (pattern, path) => {
    expect(compileRoutePattern(pattern)(path)).toBe(false);
  });

  it.each([
    ['/a.b/{id}', '/a.b/1'],
    ['/a+b/{id}', '/a+b/1'],
    ['/(a)/{id}', '/(a)/1'],
    ["/it's/{id}", "/it's/1"],
    ['/v1.0/**', '/v1.0/x'],
    ['/@me/{id}', '/@me/1'],
  ])('matches %s against its literal text %s', (pattern, path) => {
    expect(compileRoutePattern(pattern)(path)).toBe(true);
  });

  it.each([
    ['relative', 'must start with "/"'],
    ['', 'must start with "/"'],
    ['/a/**/b', '"**" may only be the last segment'],
    ['/a//b', 'has an empty segment ("//")'],
    ['//', 'has an empty segment ("//")'],
    ['/a/../b', 'has a dot segment ("." or "..")'],
    ['/a/.', 'has a dot segment ("." or "..")'],
    ['/a/{id', 'segment "{id": a parameter is "{name}" and fills a whole segment'],
    ['/a/{id}x', 'segment "{id}x": a parameter is "{name}" and fills a whole segment'],
    ['/a/{1d}', 'segment "{1d}": a parameter is "{name}" and fills a whole segment'],
    ['/a/*', 'segment "*": "*" is only allowed as a whole "**" last segment'],
    ['/a/b**', 'segment "b**": "*" is only allowed as a whole "**" last segment'],
    ['/a/%2F', 'segment "%2F" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)'],
    ['/a?b=1', 'segment "a?b=1" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)'],
    ['/a b', 'segment "a b" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)'],
    ['/a"b', 'segment "a"b" has characters not allowed in a path (no "?", "#", "%", spaces or quotes)'],
    [`/${'a'.repeat(1024)}`, 'is longer than 1024 characters'],
  ])('refuses the pattern %j: %s', (pattern, message) => {
    let thrown: unknown;
    try {
      compileRoutePattern(pattern);
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(RoutePatternError);
    expect(thrown).toMatchObject({ code: 'ERR_ROUTE_PATTERN', message });
  });

  it('accepts a pattern of exactly 1024 characters', () => {
    const pattern = `/${'a'.repeat(1023)}`;

    expect(compileRoutePattern(pattern)(pattern)).toBe(true);
  });
});
