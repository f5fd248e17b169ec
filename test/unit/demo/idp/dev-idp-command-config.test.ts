import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../../src/args/usage-error.js';
import { devIdpConfig } from '../../../../src/demo/idp/dev-idp-config.js';

describe('devIdpConfig --redirect-uri', () => {
  it('leaves the redirect URIs to the provider by default', () => {
    expect(devIdpConfig([], {}).redirectUris).toBeUndefined();
  });

  it('takes the flag more than once, in order, each once', () => {
    const config = devIdpConfig(
      [
        '--redirect-uri',
        'http://127.0.0.1:5173/callback',
        '--redirect-uri',
        'https://bank.example/cb?x=1',
        '--redirect-uri',
        'http://127.0.0.1:5173/callback',
      ],
      {},
    );
    expect(config.redirectUris).toEqual(['http://127.0.0.1:5173/callback', 'https://bank.example/cb?x=1']);
    expect(Object.isFrozen(config.redirectUris)).toBe(true);
  });

  it.each([
    ['a relative URI', '/callback', 'is not an absolute URL'],
    ['another scheme', 'file:///tmp/cb', 'is not an http(s) URL'],
    ['a fragment', 'http://127.0.0.1:8000/cb#x', 'has a fragment'],
    ['userinfo', 'http://a:b@127.0.0.1:8000/cb', 'has userinfo'],
  ])('refuses %s with a usage error naming the flag', (_name, uri, problem) => {
    const run = () => devIdpConfig(['--redirect-uri', uri], {});
    expect(run).toThrow(UsageError);
    expect(run).toThrow(`--redirect-uri: "${uri}" ${problem}`);
  });

  it('refuses the flag without a value', () => {
    expect(() => devIdpConfig(['--redirect-uri'], {})).toThrow(UsageError);
  });
});
