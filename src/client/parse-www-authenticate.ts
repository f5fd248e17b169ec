import type { Challenge, ChallengeErrorCode, ChallengeParseError, ParseResult } from './challenge.js';

/**
 * What `parseWwwAuthenticate` reads at most. A response header is attacker-controlled input for a
 * client; these bounds keep the work and the result small whatever the server sends.
 */
export const WWW_AUTHENTICATE_LIMITS = Object.freeze({
  /** Characters in one field value (bytes, for a header value decoded as latin1, as Node decodes them). */
  maxLength: 16 * 1024,
  /** Challenges in one field value. */
  maxChallenges: 64,
  /** Auth-params in one challenge. */
  maxParamsPerChallenge: 64,
});

const HTAB = 0x09;
const SP = 0x20;
const DQUOTE = 0x22;
const COMMA = 0x2c;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;

// RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_"
//   / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR_PUNCTUATION = "!#$%&'*+-.^_`|~";

function isAlphaOrDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isTchar(c: number): boolean {
  return isAlphaOrDigit(c) || (c < 0x80 && TCHAR_PUNCTUATION.includes(String.fromCharCode(c)));
}

// RFC 9110 section 11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
function isToken68Char(c: number): boolean {
  return (
    isAlphaOrDigit(c) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e || c === 0x2b || c === 0x2f
  );
}

// RFC 9110 section 5.6.3: OWS = *( SP / HTAB )
function isWhitespace(c: number): boolean {
  return c === SP || c === HTAB;
}

// RFC 9110 section 5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text, obs-text = %x80-FF.
// obs-text is kept (it is how Node hands over the bytes of a UTF-8 value); anything above 0xFF cannot
// come from a header's bytes and is refused along with the control characters.
function isQdtext(c: number): boolean {
  return (
    c === HTAB ||
    c === SP ||
    c === 0x21 ||
    (c >= 0x23 && c <= 0x5b) ||
    (c >= 0x5d && c <= 0x7e) ||
    (c >= 0x80 && c <= 0xff)
  );
}

// RFC 9110 section 5.6.4: quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
function isQuotedPairChar(c: number): boolean {
  return c === HTAB || c === SP || (c >= 0x21 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/** A challenge while its params are still being read. */
interface ChallengeUnderConstruction {
  scheme: string;
  token68?: string;
  params: Map<string, string>;
}

/** Unwinds from deep in the parser to `parseWwwAuthenticate`, which returns it as a value; never escapes. */
class ParseFailure extends Error {
  readonly error: ChallengeParseError;

  constructor(error: ChallengeParseError) {
    super(error.message);
    this.error = error;
  }
}

/**
 * A recursive-descent reader of `#challenge` (RFC 9110 section 11.6.1). The one decision the grammar
 * leaves to the reader is what a comma starts: another auth-param of the current challenge, or a new
 * challenge. An auth-param is `token BWS "="`, while a challenge is `token [ 1*SP ... ]` and a token68
 * never begins with "=", so an element whose first token is followed (after optional white space) by
 * "=" is an auth-param and anything else is a new challenge.
 */
class ChallengeListReader {
  private pos = 0;
  private readonly challenges: ChallengeUnderConstruction[] = [];
  /** The challenge a following auth-param belongs to; none at the start and after a token68. */
  private open: ChallengeUnderConstruction | undefined;

  constructor(private readonly input: string) {}

  read(): Challenge[] {
    for (;;) {
      // RFC 9110 section 5.6.1.2: recipients accept empty list elements and OWS around the commas.
      this.skipWhile((c) => isWhitespace(c) || c === COMMA);
      if (this.atEnd(this.pos)) return this.challenges;
      if (this.open !== undefined && this.startsAuthParam()) this.readAuthParam(this.open);
      else this.readChallenge();
      this.expectElementEnd();
    }
  }

  private readChallenge(): void {
    const start = this.pos;
    if (this.code(start) === EQUALS) this.fail(start, "'=' without a name before it");
    const schemeEnd = this.tokenEnd(start);
    if (schemeEnd === start) this.fail(start, `expected an auth-scheme, found ${this.describe(start)}`);
    const scheme = this.input.slice(start, schemeEnd);
    const afterSpace = this.whitespaceEnd(schemeEnd);

    if (this.code(afterSpace) === EQUALS) {
      // `name=value` where a challenge must start: the scheme is missing, or the challenge before
      // carries a token68, which takes no auth-params (RFC 9110 section 11.2).
      this.fail(
        start,
        this.challenges.at(-1)?.token68 !== undefined
          ? `auth-param "${scheme}" follows a token68 challenge, which takes no auth-params`
          : `auth-param "${scheme}" has no auth-scheme before it`,
      );
    }
    if (this.challenges.length >= WWW_AUTHENTICATE_LIMITS.maxChallenges) {
      this.fail(
        start,
        `more than ${WWW_AUTHENTICATE_LIMITS.maxChallenges} challenges`,
        'ERR_CHALLENGE_LIMIT',
      );
    }
    const challenge: ChallengeUnderConstruction = { scheme, params: new Map() };
    this.challenges.push(challenge);
    this.open = challenge;

    if (this.atEnd(afterSpace) || this.code(afterSpace) === COMMA) {
      // A bare scheme: whatever white space follows is the OWS before the list's comma.
      this.pos = afterSpace;
      return;
    }
    // RFC 9110 section 11.6.1: auth-scheme [ 1*SP ( token68 / #auth-param ) ]. SP only, not HTAB.
    if (afterSpace === schemeEnd || /[^ ]/.test(this.input.slice(schemeEnd, afterSpace))) {
      this.fail(schemeEnd, `the auth-scheme "${scheme}" must be followed by a space (SP)`);
    }
    this.pos = afterSpace;
    if (this.readToken68(challenge)) this.open = undefined;
    else this.readAuthParam(challenge);
  }

  /**
   * A token68 is the whole of its list element (RFC 9110 section 11.2). Checking that the element ends
   * after it is what tells `abc=` (token68) from `abc=def` (an auth-param): no string is both.
   */
  private readToken68(challenge: ChallengeUnderConstruction): boolean {
    let end = this.pos;
    while (!this.atEnd(end) && isToken68Char(this.code(end))) end++;
    if (end === this.pos) return false;
    while (this.code(end) === EQUALS) end++;
    const after = this.whitespaceEnd(end);
    if (!this.atEnd(after) && this.code(after) !== COMMA) return false;
    challenge.token68 = this.input.slice(this.pos, end);
    this.pos = end;
    return true;
  }

  /** Whether the list element at `pos` is `token BWS "="` (or a bare "=", reported by `readAuthParam`). */
  private startsAuthParam(): boolean {
    if (this.code(this.pos) === EQUALS) return true;
    const nameEnd = this.tokenEnd(this.pos);
    return nameEnd > this.pos && this.code(this.whitespaceEnd(nameEnd)) === EQUALS;
  }

  // RFC 9110 section 11.2: auth-param = token BWS "=" BWS ( token / quoted-string )
  private readAuthParam(challenge: ChallengeUnderConstruction): void {
    const start = this.pos;
    if (this.code(start) === EQUALS) this.fail(start, "'=' without a parameter name before it");
    const nameEnd = this.tokenEnd(start);
    if (nameEnd === start) this.fail(start, `expected an auth-param name, found ${this.describe(start)}`);
    const sentName = this.input.slice(start, nameEnd);
    // RFC 9110 section 11.2: parameter names are case-insensitive, and "each parameter name MUST only
    // occur once per challenge": a repeat is refused rather than resolved, as either choice could be
    // the one an attacker injected.
    const name = sentName.toLowerCase();
    if (challenge.params.has(name)) {
      this.fail(
        start,
        `auth-param "${sentName}" occurs more than once in the "${challenge.scheme}" challenge`,
      );
    }
    if (challenge.params.size >= WWW_AUTHENTICATE_LIMITS.maxParamsPerChallenge) {
      this.fail(
        start,
        `more than ${WWW_AUTHENTICATE_LIMITS.maxParamsPerChallenge} auth-params in one challenge`,
        'ERR_CHALLENGE_LIMIT',
      );
    }

    const equals = this.whitespaceEnd(nameEnd);
    if (this.code(equals) !== EQUALS) {
      this.fail(equals, `expected '=' after auth-param "${sentName}", found ${this.describe(equals)}`);
    }
    const valueStart = this.whitespaceEnd(equals + 1);
    let value: string;
    if (this.code(valueStart) === DQUOTE) {
      value = this.readQuotedString(valueStart);
    } else {
      const valueEnd = this.tokenEnd(valueStart);
      if (valueEnd === valueStart) {
        this.fail(
          valueStart,
          `expected a token or quoted-string value for "${sentName}", found ${this.describe(valueStart)}`,
        );
      }
      value = this.input.slice(valueStart, valueEnd);
      this.pos = valueEnd;
    }
    challenge.params.set(name, value);
  }

  // RFC 9110 section 5.6.4: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE; a recipient
  // unescapes each quoted-pair "\x" to x.
  private readQuotedString(open: number): string {
    let value = '';
    let runStart = open + 1;
    let i = runStart;
    for (;;) {
      if (this.atEnd(i)) this.fail(open, 'unterminated quoted-string');
      const c = this.code(i);
      if (c === DQUOTE) {
        this.pos = i + 1;
        return value + this.input.slice(runStart, i);
      }
      if (c === BACKSLASH) {
        if (this.atEnd(i + 1)) this.fail(open, 'unterminated quoted-string');
        if (!isQuotedPairChar(this.code(i + 1))) {
          this.fail(i + 1, `${this.describe(i + 1)} is not allowed in a quoted-string`);
        }
        value += this.input.slice(runStart, i) + this.input.charAt(i + 1);
        i += 2;
        runStart = i;
        continue;
      }
      if (!isQdtext(c)) this.fail(i, `${this.describe(i)} is not allowed in a quoted-string`);
      i++;
    }
  }

  // RFC 9110 section 5.6.1: elements are separated by OWS "," OWS.
  private expectElementEnd(): void {
    const end = this.whitespaceEnd(this.pos);
    if (!this.atEnd(end) && this.code(end) !== COMMA) {
      this.fail(end, `expected ',' or the end of the value, found ${this.describe(end)}`);
    }
    this.pos = end;
  }

  private tokenEnd(from: number): number {
    let end = from;
    while (!this.atEnd(end) && isTchar(this.code(end))) end++;
    return end;
  }

  private whitespaceEnd(from: number): number {
    let end = from;
    while (!this.atEnd(end) && isWhitespace(this.code(end))) end++;
    return end;
  }

  private skipWhile(test: (c: number) => boolean): void {
    while (!this.atEnd(this.pos) && test(this.code(this.pos))) this.pos++;
  }

  private atEnd(i: number): boolean {
    return i >= this.input.length;
  }

  /** The UTF-16 code unit at `i`, or -1 past the end (which matches no character class). */
  private code(i: number): number {
    return i < this.input.length ? this.input.charCodeAt(i) : -1;
  }

  /** Names the character at `i` for a message, without copying control characters into it. */
  private describe(i: number): string {
    if (this.atEnd(i)) return 'the end of the value';
    const c = this.code(i);
    const hex = c
      .toString(16)
      .toUpperCase()
      .padStart(c > 0xff ? 4 : 2, '0');
    if (c < 0x20 || c === 0x7f) return `control character 0x${hex}`;
    if (c > 0xff) return `U+${hex}, which is not a header byte`;
    if (c >= 0x80) return `byte 0x${hex}`;
    return `'${this.input.charAt(i)}'`;
  }

  private fail(position: number, message: string, code: ChallengeErrorCode = 'ERR_CHALLENGE_SYNTAX'): never {
    throw new ParseFailure({ code, position, message });
  }
}

/**
 * Parses a `WWW-Authenticate` (or `Proxy-Authenticate`) field value into its challenges, following
 * RFC 9110 section 11.6.1 (`#challenge`), section 11.2 (auth-params and token68) and the list rules of
 * section 5.6.1. Several challenges may share one value: `Newauth realm="apps", type=1, Basic
 * realm="simple"` is two challenges.
 *
 * The value is read strictly, with the tolerance the RFC asks of recipients (empty list elements, OWS
 * around commas and BWS around "="). A value that breaks the grammar, repeats a parameter name within a
 * challenge, or exceeds {@link WWW_AUTHENTICATE_LIMITS} yields an error value; this function does not
 * throw for any string. An empty value (or one of commas and white space only) yields no challenges:
 * `#challenge` allows an empty list, and what a 401 without a challenge means is the caller's decision.
 *
 * Several `WWW-Authenticate` header lines are one list (RFC 9110 section 5.3): join them with ", "
 * before parsing, or parse each and concatenate.
 *
 * @param value the field value, as received (Node decodes header bytes as latin1).
 */
export function parseWwwAuthenticate(value: string): ParseResult {
  if (value.length > WWW_AUTHENTICATE_LIMITS.maxLength) {
    return {
      ok: false,
      error: {
        code: 'ERR_CHALLENGE_LIMIT',
        position: WWW_AUTHENTICATE_LIMITS.maxLength,
        message: `the value is longer than ${WWW_AUTHENTICATE_LIMITS.maxLength} characters`,
      },
    };
  }
  try {
    return { ok: true, challenges: new ChallengeListReader(value).read() };
  } catch (thrown) {
    if (thrown instanceof ParseFailure) return { ok: false, error: thrown.error };
    throw thrown;
  }
}
