import { describe, expect, it } from 'vitest';
import { readAccessTokenCredentials } from '../../../src/authn/access-token-credentials.js';

const TWO_HEADERS = { kind: 'malformed', description: 'more than one Authorization header' };
const NO_TOKEN = { kind: 'malformed', description: 'the Bearer scheme needs a token' };
const WHITE_SPACE = { kind: 'malformed', description: 'the bearer token contains white space' };
const BAD_CHARACTERS = {
  kind: 'malformed',
  description: 'the bearer token has characters RFC 6750 does not allow',
};

/** The refusal of a tab between the scheme and the token. */
const SPACES_ONLY = (scheme: string) => ({
  kind: 'malformed',
  scheme,
  description: `only spaces may separate ${scheme} and the token`,
});

describe('readAccessTokenCredentials', () => {
  it.each([
    ['no Authorization header', []],
    ['an empty header', ['']],
    ['a blank header', ['   ']],
    ['Basic credentials', ['Basic YWxpY2U6c2VjcmV0']],
    ['Digest credentials', ['Digest username="alice", realm="bank-api"']],
    ['a scheme that only starts with "Bearer"', ['Bearerabc']],
  ])('finds no credentials in %s', (_case, values) => {
    expect(readAccessTokenCredentials(values)).toEqual({ kind: 'none' });
  });

  it.each([
    ['Bearer abc', 'abc'],
    ['bearer abc', 'abc'],
    ['BEARER abc', 'abc'],
    ['BeArEr abc', 'abc'],
    ['Bearer  abc', 'abc'],
    ['  Bearer abc  ', 'abc'],
    ['Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_'],
    ['Bearer a-b.c_d~e+f/g', 'a-b.c_d~e+f/g'],
    ['Bearer abc=', 'abc='],
    ['Bearer abc==', 'abc=='],
  ])('reads the token from %j', (value, token) => {
    expect(readAccessTokenCredentials([value])).toEqual({
      kind: 'presented',
      scheme: 'Bearer',
      value: token,
    });
  });

  // RFC 9449 section 7.1: the DPoP scheme carries the access token in the same token68 syntax.
  it.each([
    ['DPoP abc', 'abc'],
    ['dpop abc', 'abc'],
    ['DPOP  abc', 'abc'],
    ['DPoP eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_'],
  ])('reads a DPoP-scheme token from %j', (value, token) => {
    expect(readAccessTokenCredentials([value])).toEqual({ kind: 'presented', scheme: 'DPoP', value: token });
  });

  it.each([
    ['"DPoP" alone', ['DPoP'], 'the DPoP scheme needs a token'],
    ['a DPoP token with a space', ['DPoP abc def'], 'the DPoP access token contains white space'],
    [
      'a DPoP token with a quote',
      ['DPoP abc"'],
      'the DPoP access token has characters RFC 6750 does not allow',
    ],
    ['DPoP and Bearer joined', ['DPoP a, Bearer b'], 'more than one Authorization header'],
  ])('calls %s malformed, under the DPoP scheme', (_case, values, description) => {
    expect(readAccessTokenCredentials(values)).toEqual({ kind: 'malformed', scheme: 'DPoP', description });
  });

  it('calls Basic joined with DPoP malformed, with no scheme to answer under', () => {
    expect(readAccessTokenCredentials(['Basic x, DPoP y'])).toEqual(TWO_HEADERS);
  });

  it.each([
    ['"Bearer" alone', ['Bearer'], NO_TOKEN],
    ['"Bearer " with a trailing space', ['Bearer '], NO_TOKEN],
    ['"bearer" in lower case alone', ['bearer'], NO_TOKEN],
    ['a token with a space in it', ['Bearer abc def'], WHITE_SPACE],
    ['a token with a tab in it', ['Bearer abc\tdef'], WHITE_SPACE],
    // RFC 9110 section 11.3: credentials = auth-scheme [ 1*SP token68 ]: spaces, never a tab.
    ['a tab between the scheme and the token', ['Bearer\tabc'], SPACES_ONLY('Bearer')],
    ['a space and a tab between the scheme and the token', ['Bearer \tabc'], SPACES_ONLY('Bearer')],
    ['a tab after DPoP', ['DPoP\tabc'], SPACES_ONLY('DPoP')],
    ['two header values', ['Bearer a', 'Bearer b'], TWO_HEADERS],
    ['a Basic and a Bearer header', ['Basic x', 'Bearer y'], TWO_HEADERS],
    ['two values, even if one is empty', ['Bearer a', ''], TWO_HEADERS],
    ['two Bearer values joined with a comma', ['Bearer a,Bearer b'], TWO_HEADERS],
    ['two Bearer values joined with ", "', ['Bearer a, Bearer b'], TWO_HEADERS],
    ['Basic and Bearer joined with a comma', ['Basic x, Bearer y'], TWO_HEADERS],
    ['Basic and bearer joined, in lower case', ['Basic x,bearer y'], TWO_HEADERS],
    ['a quote', ['Bearer abc"def'], BAD_CHARACTERS],
    ['padding in the middle', ['Bearer ab=c'], BAD_CHARACTERS],
    ['padding only', ['Bearer ='], BAD_CHARACTERS],
    ['a semicolon', ['Bearer abc;def'], BAD_CHARACTERS],
    ['a non-ASCII letter', ['Bearer ab\u00e7'], BAD_CHARACTERS],
    ['a control character', ['Bearer abc\u0000'], BAD_CHARACTERS],
    ['a token68 with a percent sign', ['Bearer abc%3D'], BAD_CHARACTERS],
  ])('calls %s malformed', (_case, values, expected) => {
    // The scheme, when there is one to answer under, is checked below.
    expect(readAccessTokenCredentials(values)).toMatchObject(expected);
  });

  it('says which scheme malformed credentials came with, when one can be told', () => {
    expect(readAccessTokenCredentials(['Bearer abc def'])).toEqual({ ...WHITE_SPACE, scheme: 'Bearer' });
    expect(readAccessTokenCredentials(['Bearer a,Bearer b'])).toEqual({ ...TWO_HEADERS, scheme: 'Bearer' });
    expect(readAccessTokenCredentials(['Bearer a', 'Bearer b'])).toEqual(TWO_HEADERS);
  });

  it('never echoes the presented token in the description', () => {
    const secret = 'eyJ.secret-part"x';
    const result = readAccessTokenCredentials([`Bearer ${secret}`]);

    expect(result.kind).toBe('malformed');
    expect(JSON.stringify(result)).not.toContain('secret-part');
  });
});

describe('readAccessTokenCredentials: more of the DPoP scheme (RFC 9449 section 7.1)', () => {
  const dpop = (description: string) => ({ kind: 'malformed', scheme: 'DPoP', description });

  it.each([
    ['DPOP abc', 'abc'],
    ['DPoP   abc', 'abc'],
    ['  DPoP abc  ', 'abc'],
    ['DPoP a-b.c_d~e+f/g==', 'a-b.c_d~e+f/g=='],
  ])('reads the token and the DPoP scheme from %j', (value, token) => {
    expect(readAccessTokenCredentials([value])).toEqual({ kind: 'presented', scheme: 'DPoP', value: token });
  });

  it.each([
    ['a scheme that only starts with "DPoP"', ['DPoPabc']],
    ['DPoP- as a scheme', ['DPoP-Nonce abc']],
  ])('finds no credentials in %s', (_case, values) => {
    expect(readAccessTokenCredentials(values)).toEqual({ kind: 'none' });
  });

  it.each([
    ['"dpop " with a trailing space', ['dpop '], dpop('the DPoP scheme needs a token')],
    ['two DPoP values joined with a comma', ['DPoP a,DPoP b'], dpop('more than one Authorization header')],
    [
      'Bearer and DPoP joined',
      ['Bearer a, DPoP b'],
      { kind: 'malformed', scheme: 'Bearer', description: 'more than one Authorization header' },
    ],
  ])('calls %s malformed, under the scheme used', (_case, values, expected) => {
    expect(readAccessTokenCredentials(values)).toEqual(expected);
  });

  it.each([
    ['Basic and dpop joined, in lower case', ['Basic x,dpop y']],
    ['a DPoP and a Bearer header', ['DPoP a', 'Bearer b']],
    ['two DPoP headers', ['DPoP a', 'DPoP b']],
  ])('calls %s malformed, under no scheme', (_case, values) => {
    expect(readAccessTokenCredentials(values)).toEqual({
      kind: 'malformed',
      description: 'more than one Authorization header',
    });
  });

  it('never echoes a DPoP-scheme token in the description', () => {
    const result = readAccessTokenCredentials(['DPoP eyJ.secret-part"x']);
    expect(result.kind).toBe('malformed');
    expect(JSON.stringify(result)).not.toContain('secret-part');
  });
});
