import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bearerChallenge, type ChallengeParams } from '../../../src/authz/auth-challenge.js';
import type { Challenge } from '../../../src/client/challenge.js';
import { findBearerChallenge } from '../../../src/client/find-bearer-challenge.js';
import { parseWwwAuthenticate, WWW_AUTHENTICATE_LIMITS } from '../../../src/client/parse-www-authenticate.js';

/** A challenge as plain data, params in field order, so that failures print readable diffs. */
interface Expected {
  scheme: string;
  token68?: string;
  params: [string, string][];
}

function expected(scheme: string, params: Record<string, string> = {}): Expected {
  return { scheme, params: Object.entries(params) };
}

function withToken68(scheme: string, token68: string): Expected {
  return { scheme, token68, params: [] };
}

function plain(challenge: Challenge): Expected {
  return {
    scheme: challenge.scheme,
    ...(challenge.token68 !== undefined && { token68: challenge.token68 }),
    params: [...challenge.params],
  };
}

function parsed(value: string): Expected[] {
  const result = parseWwwAuthenticate(value);
  if (!result.ok)
    throw new Error(`expected ${JSON.stringify(value)} to parse: ${JSON.stringify(result.error)}`);
  return result.challenges.map(plain);
}

function parsedChallenges(value: string): readonly Challenge[] {
  const result = parseWwwAuthenticate(value);
  if (!result.ok)
    throw new Error(`expected ${JSON.stringify(value)} to parse: ${JSON.stringify(result.error)}`);
  return result.challenges;
}

describe('parseWwwAuthenticate', () => {
  describe('reads the examples of the RFCs', () => {
    it.each<[string, string, Expected[]]>([
      [
        'RFC 6750 section 3: a request without credentials',
        'Bearer realm="example"',
        [expected('Bearer', { realm: 'example' })],
      ],
      [
        'RFC 6750 section 3: an expired token',
        'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
        [
          expected('Bearer', {
            realm: 'example',
            error: 'invalid_token',
            error_description: 'The access token expired',
          }),
        ],
      ],
      [
        'RFC 9470 section 3: a different authentication level is required',
        'Bearer error="insufficient_user_authentication", ' +
          'error_description="A different authentication level is required", acr_values="myACR"',
        [
          expected('Bearer', {
            error: 'insufficient_user_authentication',
            error_description: 'A different authentication level is required',
            acr_values: 'myACR',
          }),
        ],
      ],
      [
        'RFC 9470 section 3: a more recent authentication is required',
        'Bearer error="insufficient_user_authentication", ' +
          'error_description="More recent authentication is required", max_age="5"',
        [
          expected('Bearer', {
            error: 'insufficient_user_authentication',
            error_description: 'More recent authentication is required',
            max_age: '5',
          }),
        ],
      ],
      [
        'RFC 9110 section 11.6.1: two challenges in one value, with a token value and a quoted-pair',
        'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
        [
          expected('Newauth', { realm: 'apps', type: '1', title: 'Login to "apps"' }),
          expected('Basic', { realm: 'simple' }),
        ],
      ],
    ])('%s', (_, value, challenges) => {
      expect(parsed(value)).toEqual(challenges);
    });
  });

  describe('token68 (RFC 9110 section 11.2)', () => {
    it.each<[string, string, Expected[]]>([
      ['Basic credentials', 'Basic dXNlcjpwYXNz', [withToken68('Basic', 'dXNlcjpwYXNz')]],
      [
        'a Negotiate token',
        'Negotiate a87421000492aa874209af8bc028',
        [withToken68('Negotiate', 'a87421000492aa874209af8bc028')],
      ],
      ['trailing "=" padding', 'Basic dXNlcg==', [withToken68('Basic', 'dXNlcg==')]],
      [
        'a first element "name=" with nothing after it is a token68, not an auth-param without a value',
        'Bearer realm=',
        [withToken68('Bearer', 'realm=')],
      ],
      ['"/" and "+", which are not tchar', 'Basic ab/c+d~e', [withToken68('Basic', 'ab/c+d~e')]],
      [
        'a token68 ending in "=" followed by another challenge',
        'Basic abc=, Bearer realm="x"',
        [withToken68('Basic', 'abc='), expected('Bearer', { realm: 'x' })],
      ],
      [
        'a token68 challenge after an auth-param challenge',
        'Bearer realm="x", Negotiate abc',
        [expected('Bearer', { realm: 'x' }), withToken68('Negotiate', 'abc')],
      ],
      [
        'an element with text after the "=" is an auth-param, not a token68',
        'Foo abc=def',
        [expected('Foo', { abc: 'def' })],
      ],
    ])('%s', (_, value, challenges) => {
      expect(parsed(value)).toEqual(challenges);
    });
  });

  describe('auth-params (RFC 9110 section 11.2)', () => {
    it.each<[string, string, Expected[]]>([
      ['an unquoted token value', 'Bearer max_age=300', [expected('Bearer', { max_age: '300' })]],
      [
        'a token value using tchar punctuation',
        "Foo p=!#$%&'*+-.^_`|~9",
        [expected('Foo', { p: "!#$%&'*+-.^_`|~9" })],
      ],
      ['an empty quoted-string', 'Bearer realm=""', [expected('Bearer', { realm: '' })]],
      [
        'quoted-pairs for a quote and a backslash',
        'Bearer realm="a \\"quoted\\" \\\\ path"',
        [expected('Bearer', { realm: 'a "quoted" \\ path' })],
      ],
      [
        'a quoted-pair of an ordinary character',
        'Bearer realm="\\a\\ b"',
        [expected('Bearer', { realm: 'a b' })],
      ],
      [
        'commas, equals signs and white space inside a quoted-string',
        'Bearer error_description="x, y=\tz", scope="a"',
        [expected('Bearer', { error_description: 'x, y=\tz', scope: 'a' })],
      ],
      [
        'obs-text in a quoted-string, kept as received',
        'Bearer realm="caf\u00e9"',
        [expected('Bearer', { realm: 'caf\u00e9' })],
      ],
      [
        'a parameter name in upper case, lower-cased',
        'Bearer REALM="x"',
        [expected('Bearer', { realm: 'x' })],
      ],
      [
        'parameter names in mixed case',
        'Bearer Realm="x", Error_Description="y"',
        [expected('Bearer', { realm: 'x', error_description: 'y' })],
      ],
      ['the scheme as sent', 'bEaReR realm="x"', [expected('bEaReR', { realm: 'x' })]],
      ['values keep their case', 'Bearer realm="MiXeD"', [expected('Bearer', { realm: 'MiXeD' })]],
      ['BWS around "="', 'Bearer realm = "x"', [expected('Bearer', { realm: 'x' })]],
      ['tabs as BWS', 'Bearer realm\t=\t"x"', [expected('Bearer', { realm: 'x' })]],
      ['BWS before a token value', 'Bearer max_age =  300', [expected('Bearer', { max_age: '300' })]],
      ['no OWS after commas', 'Bearer realm="x",error="y"', [expected('Bearer', { realm: 'x', error: 'y' })]],
      [
        'OWS on both sides of commas',
        'Bearer realm="x" \t,\t error="y"',
        [expected('Bearer', { realm: 'x', error: 'y' })],
      ],
      ['several spaces after the scheme', 'Bearer   realm="x"', [expected('Bearer', { realm: 'x' })]],
      ['white space around the value', ' \tBearer realm="x"\t ', [expected('Bearer', { realm: 'x' })]],
    ])('%s', (_, value, challenges) => {
      expect(parsed(value)).toEqual(challenges);
    });
  });

  describe('list rules (RFC 9110 section 5.6.1)', () => {
    it.each<[string, string, Expected[]]>([
      ['an empty value has no challenges', '', []],
      ['commas and white space only have no challenges', ' , ,\t,', []],
      ['empty elements around a challenge', ', Bearer realm="a" ,', [expected('Bearer', { realm: 'a' })]],
      [
        'empty elements between auth-params',
        'Bearer realm="a", , ,error="b"',
        [expected('Bearer', { realm: 'a', error: 'b' })],
      ],
      [
        'an empty element before the first auth-param (1*SP, then a list starting empty)',
        'Bearer , realm="a"',
        [expected('Bearer', { realm: 'a' })],
      ],
      [
        'empty elements between challenges',
        'Basic realm="a",,, Bearer realm="b"',
        [expected('Basic', { realm: 'a' }), expected('Bearer', { realm: 'b' })],
      ],
      ['a bare scheme', 'Bearer', [expected('Bearer')]],
      ['a bare scheme followed by spaces', 'Bearer  ', [expected('Bearer')]],
      [
        'bare schemes in a list',
        'Negotiate, NTLM , Bearer',
        [expected('Negotiate'), expected('NTLM'), expected('Bearer')],
      ],
    ])('%s', (_, value, challenges) => {
      expect(parsed(value)).toEqual(challenges);
    });
  });

  describe('telling a new challenge from another auth-param of the same challenge', () => {
    it.each<[string, string, Expected[]]>([
      [
        'a token followed by SP and then not "=" starts a challenge',
        'Bearer realm="a", Basic realm="b"',
        [expected('Bearer', { realm: 'a' }), expected('Basic', { realm: 'b' })],
      ],
      [
        'a token followed by BWS and "=" is an auth-param, even with a scheme-like name',
        'Bearer realm="a", Basic ="b"',
        [expected('Bearer', { realm: 'a', basic: 'b' })],
      ],
      [
        'a bare token after an auth-param is a new challenge without parameters',
        'Bearer realm="a", Negotiate',
        [expected('Bearer', { realm: 'a' }), expected('Negotiate')],
      ],
      [
        'an auth-param after a bare scheme belongs to it',
        'Negotiate, Bearer, realm="a"',
        [expected('Negotiate'), expected('Bearer', { realm: 'a' })],
      ],
      [
        'a comma inside a quoted-string never ends the challenge',
        'Bearer error_description="no, Basic realm=x", realm="a"',
        [expected('Bearer', { error_description: 'no, Basic realm=x', realm: 'a' })],
      ],
      [
        'the same parameter name in two challenges',
        'Basic realm="a", Bearer realm="b", Digest realm="c", nonce="n"',
        [
          expected('Basic', { realm: 'a' }),
          expected('Bearer', { realm: 'b' }),
          expected('Digest', { realm: 'c', nonce: 'n' }),
        ],
      ],
      [
        'a token value then a challenge whose scheme is also a parameter name elsewhere',
        'A type=1, type x=2',
        [expected('A', { type: '1' }), expected('type', { x: '2' })],
      ],
    ])('%s', (_, value, challenges) => {
      expect(parsed(value)).toEqual(challenges);
    });
  });

  describe('refuses values that break the grammar, saying where', () => {
    it.each<[string, string, number]>([
      ['an unterminated quoted-string (at its opening quote)', 'Bearer realm="example', 13],
      ['a quoted-string ending in a lone backslash', 'Bearer realm="a\\', 13],
      ['a missing scheme before an auth-param', 'realm="x"', 0],
      ['a missing scheme after other challenges', 'Basic abc, realm="x"', 11],
      ['a value starting with "="', '="x"', 0],
      ['"=" without a parameter name', 'Bearer , ="x"', 9],
      ['a scheme-like name, BWS and "=": an auth-param with no scheme', 'Bearer ="x"', 0],
      ['"=" without a parameter name after a comma', 'Bearer realm="a", ="x"', 18],
      ['a duplicate parameter (at the repeat)', 'Bearer realm="a", realm="b"', 18],
      ['a duplicate parameter differing in case', 'Bearer realm="a", REALM="b"', 18],
      ['a duplicate parameter behind an empty element', 'Bearer error="a", , error=b', 20],
      ['a NUL in a quoted-string', 'Bearer realm="a\u0000b"', 15],
      ['a CR LF in a quoted-string', 'Bearer realm="a\r\nX-Injected: 1"', 15],
      ['a DEL in a quoted-string', 'Bearer realm="a\u007f"', 15],
      ['a control character in a quoted-pair', 'Bearer realm="a\\\u0001"', 16],
      ['a control character outside quotes', 'Bearer realm=a\u0000', 14],
      ['a line feed after a challenge', 'Bearer realm="a"\nX: y', 16],
      ['a character that is not a header byte', 'Bearer realm="\u2603"', 14],
      ['a missing value', 'Bearer realm="a", error=', 24],
      ['a missing value before a comma', 'Bearer realm="a", error=, scope="x"', 24],
      ['an auth-param after "name=", which is a token68', 'Bearer realm=, error="x"', 15],
      ['a value that is neither token nor quoted-string', 'Bearer realm=@', 13],
      ['a missing "=" after a parameter name', 'Bearer realm "x"', 13],
      ['two auth-params without a comma', 'Bearer realm="a" error="b"', 17],
      ['text straight after a quoted-string', 'Bearer realm="a"b', 16],
      ['a token68 followed by more text', 'Basic abc def', 10],
      ['a tab instead of SP after the scheme', 'Bearer\trealm="x"', 6],
      ['a quote straight after the scheme', 'Bearer"x"', 6],
      ['a quoted-string where a scheme belongs', '"Bearer" realm="x"', 0],
      ['a quoted-string where an auth-param name belongs', 'Bearer "realm"="x"', 7],
      ['a separator where a scheme belongs', 'Basic, ;', 7],
    ])('%s', (_, value, position) => {
      const result = parseWwwAuthenticate(value);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe('ERR_CHALLENGE_SYNTAX');
      expect(result.error.position).toBe(position);
      expect(result.error.message).not.toBe('');
    });

    it('says in the message what it expected, without echoing control characters', () => {
      const result = parseWwwAuthenticate('Bearer realm="a\r\nX: 1"');
      expect(result).toEqual({
        ok: false,
        error: {
          code: 'ERR_CHALLENGE_SYNTAX',
          position: 15,
          message: 'control character 0x0D is not allowed in a quoted-string',
        },
      });
    });

    it('names the repeated parameter as sent', () => {
      const result = parseWwwAuthenticate('Bearer realm="a", REALM="b"');
      expect(result.ok ? undefined : result.error.message).toBe(
        'auth-param "REALM" occurs more than once in the "Bearer" challenge',
      );
    });

    it('explains that a token68 challenge takes no auth-params', () => {
      const result = parseWwwAuthenticate('Basic abc, realm="x"');
      expect(result.ok ? undefined : result.error.message).toBe(
        'auth-param "realm" follows a token68 challenge, which takes no auth-params',
      );
    });
  });

  describe('bounds what it reads', () => {
    const { maxLength, maxChallenges, maxParamsPerChallenge } = WWW_AUTHENTICATE_LIMITS;

    it('reads a value of exactly the maximum length', () => {
      const value = `Bearer realm="${'a'.repeat(maxLength - 'Bearer realm=""'.length)}"`;
      expect(value).toHaveLength(maxLength);
      expect(parseWwwAuthenticate(value).ok).toBe(true);
    });

    it('refuses a longer value, at the first character past the limit', () => {
      const value = `Bearer realm="${'a'.repeat(maxLength)}"`;
      expect(parseWwwAuthenticate(value)).toEqual({
        ok: false,
        error: {
          code: 'ERR_CHALLENGE_LIMIT',
          position: maxLength,
          message: `the value is longer than ${maxLength} characters`,
        },
      });
    });

    it('refuses an over-size value of commas before looking at it', () => {
      const result = parseWwwAuthenticate(','.repeat(maxLength + 1));
      expect(result.ok ? undefined : result.error.code).toBe('ERR_CHALLENGE_LIMIT');
    });

    it(`reads ${maxChallenges} challenges and refuses one more, at its scheme`, () => {
      const challenges = Array.from({ length: maxChallenges }, (_, i) => `S${i}`);
      expect(parsed(challenges.join(', '))).toHaveLength(maxChallenges);

      const value = [...challenges, 'Extra'].join(', ');
      expect(parseWwwAuthenticate(value)).toEqual({
        ok: false,
        error: {
          code: 'ERR_CHALLENGE_LIMIT',
          position: value.indexOf('Extra'),
          message: `more than ${maxChallenges} challenges`,
        },
      });
    });

    it(`reads ${maxParamsPerChallenge} auth-params in a challenge and refuses one more, at its name`, () => {
      const params = Array.from({ length: maxParamsPerChallenge }, (_, i) => `p${i}=${i}`);
      expect(parsed(`Foo ${params.join(', ')}`)[0]?.params).toHaveLength(maxParamsPerChallenge);

      const value = `Foo ${[...params, 'extra=1'].join(', ')}`;
      expect(parseWwwAuthenticate(value)).toEqual({
        ok: false,
        error: {
          code: 'ERR_CHALLENGE_LIMIT',
          position: value.indexOf('extra'),
          message: `more than ${maxParamsPerChallenge} auth-params in one challenge`,
        },
      });
    });

    it('counts auth-params per challenge, not per value', () => {
      const params = Array.from({ length: maxParamsPerChallenge }, (_, i) => `p${i}=${i}`).join(', ');
      expect(parsed(`A ${params}, B ${params}`).map((c) => c.params.length)).toEqual([
        maxParamsPerChallenge,
        maxParamsPerChallenge,
      ]);
    });
  });
});

describe('findBearerChallenge', () => {
  it('reads the RFC 6750 section 3 expired-token challenge', () => {
    const view = findBearerChallenge(
      parsedChallenges(
        'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
      ),
    );
    expect(view).toEqual({
      realm: 'example',
      error: 'invalid_token',
      errorDescription: 'The access token expired',
      params: new Map([
        ['realm', 'example'],
        ['error', 'invalid_token'],
        ['error_description', 'The access token expired'],
      ]),
    });
  });

  it('reads the RFC 9470 section 3 step-up challenges', () => {
    expect(
      findBearerChallenge(
        parsedChallenges(
          'Bearer error="insufficient_user_authentication", ' +
            'error_description="A different authentication level is required", acr_values="myACR"',
        ),
      ),
    ).toMatchObject({ error: 'insufficient_user_authentication', acrValues: ['myACR'] });
    expect(
      findBearerChallenge(
        parsedChallenges(
          'Bearer error="insufficient_user_authentication", ' +
            'error_description="More recent authentication is required", max_age="5"',
        ),
      ),
    ).toMatchObject({ error: 'insufficient_user_authentication', maxAge: 5 });
  });

  it('splits scope and acr_values on spaces, ignoring runs of spaces', () => {
    const view = findBearerChallenge(
      parsedChallenges('Bearer scope=" read  write ", acr_values="urn:acr:mfa phr"'),
    );
    expect(view?.scope).toEqual(['read', 'write']);
    expect(view?.acrValues).toEqual(['urn:acr:mfa', 'phr']);
  });

  it('gives an empty list for a present but empty scope', () => {
    expect(findBearerChallenge(parsedChallenges('Bearer scope=""'))?.scope).toEqual([]);
  });

  it.each<[string, number | undefined]>([
    ['300', 300],
    ['0', 0],
    ['007', 7],
    ['-1', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['', undefined],
    [' 5', undefined],
    ['99999999999999999999', undefined],
  ])('reads max_age="%s" as %s', (maxAge, seconds) => {
    const view = findBearerChallenge(parsedChallenges(`Bearer max_age="${maxAge}"`));
    expect(view?.maxAge).toBe(seconds);
    expect(view?.params.get('max_age')).toBe(maxAge);
  });

  it('leaves out the fields the challenge does not carry', () => {
    expect(findBearerChallenge(parsedChallenges('Bearer'))).toEqual({ params: new Map() });
  });

  it('keeps extension parameters in params', () => {
    const view = findBearerChallenge(parsedChallenges('Bearer realm="r", resource_metadata="https://r/x"'));
    expect(view?.params.get('resource_metadata')).toBe('https://r/x');
  });

  it.each(['bearer', 'BEARER', 'BeArEr'])('matches the scheme %s case-insensitively', (scheme) => {
    expect(findBearerChallenge(parsedChallenges(`${scheme} realm="r"`))?.realm).toBe('r');
  });

  it('picks the first Bearer challenge among others', () => {
    const view = findBearerChallenge(
      parsedChallenges('Basic realm="b", Bearer realm="first", Bearer realm="second"'),
    );
    expect(view?.realm).toBe('first');
  });

  it('skips a Bearer challenge in token68 form, which RFC 6750 section 3 does not define', () => {
    expect(findBearerChallenge(parsedChallenges('Bearer abc'))).toBeUndefined();
    expect(findBearerChallenge(parsedChallenges('Bearer abc, Bearer realm="r"'))?.realm).toBe('r');
  });

  it('finds nothing when no Bearer challenge is offered', () => {
    expect(findBearerChallenge(parsedChallenges('Basic realm="r", Negotiate'))).toBeUndefined();
    expect(findBearerChallenge([])).toBeUndefined();
  });
});

describe('round trip with the product challenge builder (bearerChallenge)', () => {
  it.each<[string, ChallengeParams]>([
    ['a bare realm', { realm: 'example' }],
    ['an empty realm', { realm: '' }],
    [
      'an expired token',
      { realm: 'example', error: 'invalid_token', error_description: 'The access token expired' },
    ],
    ['an invalid request', { realm: 'bank-api', error: 'invalid_request', error_description: 'no token' }],
    ['one scope', { realm: 'bank-api', error: 'insufficient_scope', scope: 'view:balance' }],
    [
      'several scopes',
      { realm: 'bank-api', error: 'insufficient_scope', scope: 'transfer:funds view:balance openid' },
    ],
    [
      'a description with commas, equals signs and a scheme-like word',
      { realm: 'r', error: 'invalid_token', error_description: 'expired, Basic realm=x; retry=later' },
    ],
    [
      'a step-up to a stronger login',
      {
        realm: 'bank-api',
        error: 'insufficient_user_authentication',
        error_description: 'A different authentication level is required',
        acr_values: 'urn:mace:incommon:iap:silver mfa',
      },
    ],
    [
      'a step-up to a fresher login',
      { realm: 'bank-api', error: 'insufficient_user_authentication', max_age: '600' },
    ],
    [
      'every parameter',
      {
        realm: 'bank-api',
        error: 'insufficient_user_authentication',
        error_description: 'Log in again (MFA)',
        scope: 'a b',
        acr_values: 'phr phrh',
        max_age: '0',
      },
    ],
  ])('%s', (_, params) => {
    const challenges = parsedChallenges(bearerChallenge(params));
    expect(challenges).toHaveLength(1);
    expect(challenges[0]?.scheme).toBe('Bearer');
    expect(Object.fromEntries(challenges[0]?.params ?? [])).toEqual(params);

    const view = findBearerChallenge(challenges);
    expect(view).toEqual({
      realm: params.realm,
      ...(params.error !== undefined && { error: params.error }),
      ...(params.error_description !== undefined && { errorDescription: params.error_description }),
      ...(params.scope !== undefined && { scope: params.scope.split(' ') }),
      ...(params.acr_values !== undefined && { acrValues: params.acr_values.split(' ') }),
      ...(params.max_age !== undefined && { maxAge: Number(params.max_age) }),
      params: challenges[0]?.params,
    });
  });

  it('reads the Bearer challenge out of a value that also offers other schemes', () => {
    const value = `Basic realm="x", ${bearerChallenge({ realm: 'r', error: 'insufficient_scope', scope: 'a b c' })}, Negotiate`;
    expect(findBearerChallenge(parsedChallenges(value))?.scope).toEqual(['a', 'b', 'c']);
  });
});

// A tiny deterministic PRNG (mulberry32), so that a failure reproduces with the same seed.
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHANUMERIC = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const TCHARS = `${ALPHANUMERIC}!#$%&'*+-.^_\`|~`;
const TOKEN68_CHARS = `${ALPHANUMERIC}-._~+/`;
// Characters with a meaning in the grammar, plus white space and obs-text, inside values.
const VALUE_CHARS = `${ALPHANUMERIC}"\\,=; \t!~()/\u00e9`;

function generator(seed: number) {
  const random = seededRandom(seed);
  const int = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
  const pick = (chars: string): string => chars.charAt(int(0, chars.length - 1));
  const string = (chars: string, min: number, max: number): string =>
    Array.from({ length: int(min, max) }, () => pick(chars)).join('');
  return { random, int, pick, string };
}

/** Test-only serializer: the inverse of the parser, choosing among the spellings the grammar allows. */
function serialize(challenges: readonly Expected[], g: ReturnType<typeof generator>): string {
  const ows = (): string => ['', '', ' ', '\t', '  '][g.int(0, 4)] ?? '';
  const separator = (): string => `${ows()},${g.random() < 0.2 ? `${ows()},` : ''}${ows()}`;
  const isToken = (value: string): boolean => value !== '' && [...value].every((c) => TCHARS.includes(c));
  const quote = (value: string): string =>
    `"${[...value].map((c) => (c === '"' || c === '\\' || g.random() < 0.1 ? `\\${c}` : c)).join('')}"`;
  const param = ([name, value]: [string, string]): string => {
    const sentName = [...name].map((c) => (g.random() < 0.5 ? c.toUpperCase() : c)).join('');
    const sentValue = isToken(value) && g.random() < 0.5 ? value : quote(value);
    return `${sentName}${ows()}=${ows()}${sentValue}`;
  };
  const challenge = ({ scheme, token68, params }: Expected): string => {
    const space = g.random() < 0.8 ? ' ' : '   ';
    if (token68 !== undefined) return `${scheme}${space}${token68}`;
    if (params.length === 0) return scheme;
    return `${scheme}${space}${params.map(param).join(separator())}`;
  };
  const leading = g.random() < 0.2 ? `${ows()},${ows()}` : ows();
  const trailing = g.random() < 0.2 ? `${ows()},${ows()}` : ows();
  return `${leading}${challenges.map(challenge).join(separator())}${trailing}`;
}

function randomChallenges(g: ReturnType<typeof generator>): Expected[] {
  return Array.from({ length: g.int(1, 4) }, () => {
    const scheme = g.string(TCHARS, 1, 8);
    if (g.random() < 0.2)
      return withToken68(scheme, `${g.string(TOKEN68_CHARS, 1, 12)}${'='.repeat(g.int(0, 2))}`);
    const params = new Map<string, string>();
    for (let i = g.int(0, 5); i > 0; i--) {
      // Names are generated in lower case (the parser's form); the serializer varies their case.
      const name = g.string(TCHARS, 1, 6).toLowerCase();
      if (!params.has(name)) params.set(name, g.string(VALUE_CHARS, 0, 10));
    }
    return { scheme, params: [...params] };
  });
}

describe('property: parse(serialize(challenges)) gives the challenges back', () => {
  it.each([1, 2, 3, 4])('for 100 random values from seed %i', (seed) => {
    const g = generator(seed);
    for (let i = 0; i < 100; i++) {
      const challenges = randomChallenges(g);
      const value = serialize(challenges, g);
      expect(parsed(value), JSON.stringify(value)).toEqual(challenges);
    }
  });
});

describe('property: any string gives a result, never an exception', () => {
  const NOISE = 'aZ9 \t,="\\/=;!~\u0000\r\n\u007f\u00e9\u2603';

  it.each([11, 12])('for 500 random strings from seed %i', (seed) => {
    const g = generator(seed);
    for (let i = 0; i < 500; i++) {
      const value = g.string(NOISE, 0, 30);
      const result = parseWwwAuthenticate(value);
      if (result.ok) {
        for (const challenge of result.challenges)
          expect(challenge.scheme).toMatch(/^[!#$%&'*+\-.^_`|~\w]+$/);
      } else {
        expect(result.error.code).toBe('ERR_CHALLENGE_SYNTAX');
        expect(result.error.position).toBeGreaterThanOrEqual(0);
        expect(result.error.position).toBeLessThanOrEqual(value.length);
      }
    }
  });

  it.each([21, 22])('for 500 mutations of valid values from seed %i', (seed) => {
    const g = generator(seed);
    for (let i = 0; i < 500; i++) {
      const value = serialize(randomChallenges(g), g);
      const at = g.int(0, value.length);
      const mutated =
        g.random() < 0.5
          ? `${value.slice(0, at)}${g.pick(NOISE)}${value.slice(at)}`
          : `${value.slice(0, at)}${value.slice(at + 1)}`;
      const result = parseWwwAuthenticate(mutated);
      if (!result.ok) expect(result.error.position).toBeLessThanOrEqual(mutated.length);
    }
  });
});

describe('src/client', () => {
  // The demo client is meant to be lifted out on its own: it may use Node built-ins and its own files only.
  it('imports nothing but node built-ins and its own files', () => {
    const directory = new URL('../../../src/client/', import.meta.url);
    const files = readdirSync(directory).filter((file) => file.endsWith('.ts'));
    expect(files).toContain('parse-www-authenticate.ts');
    for (const file of files) {
      const source = readFileSync(new URL(file, directory), 'utf8');
      const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((match) => match[1]);
      for (const specifier of specifiers) expect(specifier, file).toMatch(/^(?:node:|\.\/[^/]+$)/);
    }
  });
});
