import { describe, expect, it } from 'vitest';
import { normalisedRequestPath, type RequestPathProblem } from '../../../src/authz/request-path.js';

describe('normalisedRequestPath', () => {
  it.each([
    ['/balance', '/balance'],
    ['/', '/'],
    ['/balance?', '/balance'],
    ['/balance?account=1&x=2', '/balance'],
    ['/balance#top', '/balance'],
    ['/balance?x=1#top', '/balance'],
    ['/balance#top?x=1', '/balance'],
    ['/balance/', '/balance/'],
    ['/balance?next=/../admin//x%2f', '/balance'],
    ['/accounts/42/balance', '/accounts/42/balance'],
    ['/.well-known/jwks.json', '/.well-known/jwks.json'],
    ['/a/..b/c..', '/a/..b/c..'],
    ['/a/%2e%2ex', '/a/%2e%2ex'],
    ['/a/%41%20b', '/a/%41%20b'],
    ["/a/~user/(x)/it's;v=1", "/a/~user/(x)/it's;v=1"],
  ])('takes the path of %j as %j', (target, path) => {
    expect(normalisedRequestPath(target)).toEqual({ path });
  });

  it.each<[string, RequestPathProblem]>([
    ['/a/../b', 'dot_segment'],
    ['/a/./b', 'dot_segment'],
    ['/..', 'dot_segment'],
    ['/.', 'dot_segment'],
    ['/a/..', 'dot_segment'],
    ['/a/.?x=1', 'dot_segment'],
    ['/a/%2e%2e/b', 'dot_segment'],
    ['/a/%2E%2E/b', 'dot_segment'],
    ['/a/.%2e/b', 'dot_segment'],
    ['/a/%2e./b', 'dot_segment'],
    ['/a/%2e/b', 'dot_segment'],
    ['/%2e%2e', 'dot_segment'],
    ['//balance', 'empty_segment'],
    ['/a//b', 'empty_segment'],
    ['/balance//', 'empty_segment'],
    ['/a%2fb', 'encoded_separator'],
    ['/a%2F..%2Fadmin', 'encoded_separator'],
    ['/a%5cb', 'encoded_separator'],
    ['/a%5C', 'encoded_separator'],
    ['/a\\b', 'bad_character'],
    ['/a\\..\\admin', 'bad_character'],
    ['/a b', 'bad_character'],
    ['/a\tb', 'bad_character'],
    ['/a\u0000', 'bad_character'],
    ['/a\r\nx-injected: 1', 'bad_character'],
    ['/a\u007f', 'bad_character'],
    ['/caf\u00e9', 'bad_character'],
    ['*', 'not_origin_form'],
    ['http://evil.example/balance', 'not_origin_form'],
    ['balance', 'not_origin_form'],
    ['', 'not_origin_form'],
    ['?x=1', 'not_origin_form'],
    ['#top', 'not_origin_form'],
  ])('refuses %j: %s', (target, problem) => {
    expect(normalisedRequestPath(target)).toEqual({ problem });
  });
});
