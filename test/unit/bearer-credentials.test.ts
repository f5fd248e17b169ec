import { describe, expect, it } from 'vitest';
import { readBearerCredentials } from '../../src/authn/bearer-credentials.js';

const TWO_HEADERS = { kind: 'malformed', description: 'more than one Authorization header' };
const NO_TOKEN = { kind: 'malformed', description: 'the Bearer scheme needs a token' };
const WHITE_SPACE = { kind: 'malformed', description: 'the bearer token contains white space' };
const BAD_CHARACTERS = {
  kind: 'malformed',
  description: 'the bearer token has characters RFC 6750 does not allow',
};

describe('readBearerCredentials', () => {
  it.each([
    ['no Authorization header', []],
    ['an empty header', ['']],
    ['a blank header', ['   ']],
    ['Basic credentials', ['Basic YWxpY2U6c2VjcmV0']],
    ['Digest credentials', ['Digest username="alice", realm="bank-api"']],
    ['a scheme that only starts with "Bearer"', ['Bearerabc']],
  ])('finds no credentials in %s', (_case, values) => {
    expect(readBearerCredentials(values)).toEqual({ kind: 'none' });
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
    expect(readBearerCredentials([value])).toEqual({ kind: 'presented', value: token });
  });

  it.each([
    ['"Bearer" alone', ['Bearer'], NO_TOKEN],
    ['"Bearer " with a trailing space', ['Bearer '], NO_TOKEN],
    ['"bearer" in lower case alone', ['bearer'], NO_TOKEN],
    ['a token with a space in it', ['Bearer abc def'], WHITE_SPACE],
    ['a token with a tab in it', ['Bearer abc\tdef'], WHITE_SPACE],
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
    expect(readBearerCredentials(values)).toEqual(expected);
  });

  it('never echoes the presented token in the description', () => {
    const secret = 'eyJ.secret-part"x';
    const result = readBearerCredentials([`Bearer ${secret}`]);

    expect(result.kind).toBe('malformed');
    expect(JSON.stringify(result)).not.toContain('secret-part');
  });
});
