import { describe, expect, it } from 'vitest';
import { answerForDecision, statusForDenial } from '../../../src/authz/answer-for-decision.js';
import { IDENTITY_HEADERS } from '../../../src/contract/identity-headers.js';
import { decideAccess } from '../../../src/authz/decide.js';
import type { Decision, DenialCode } from '../../../src/authz/decision.js';
import type { CompiledRoute } from '../../../src/policy/compiled-policy.js';
import { compileService } from '../../kit/inline-policy.js';

const service = compileService(
  '{ methods: [POST], path: /transfer, scopes: [transfer:funds] }',
  '{ path: /healthz, public: true }',
  '{ methods: [POST], path: /transfer/international, scopes: [transfer:funds, transfer:abroad] }',
);
const [transfer, healthz, international] = service.routes as [CompiledRoute, CompiledRoute, CompiledRoute];

const DESCRIPTION = 'the token has expired';
/**
 * A verified token that says nothing about the login (no acr, amr or auth_time), meant for the demo audience
 * and with no claim any service passes on in a header.
 */
const NO_LOGIN_CLAIMS = {
  acr: undefined,
  amr: new Set<string>(),
  authTime: undefined,
  audiences: new Set(['https://my-banking-api']),
  headerClaims: new Map<string, string | undefined>(),
  confirmation: {},
};
const invalidToken = `Bearer realm="bank-api", error="invalid_token", error_description="${DESCRIPTION}"`;
const INVALID_DPOP_PROOF = {
  status: 401,
  error: 'invalid_dpop_proof',
  challenge: [
    `DPoP realm="bank-api", error="invalid_dpop_proof", error_description="${DESCRIPTION}"`,
    'Bearer realm="bank-api"',
  ],
} as const;
const USE_DPOP_NONCE = {
  status: 401,
  error: 'use_dpop_nonce',
  challenge: [
    `DPoP realm="bank-api", error="use_dpop_nonce", error_description="${DESCRIPTION}"`,
    'Bearer realm="bank-api"',
  ],
} as const;

/** The whole decision table: for each denial code, the status, body `error` and exact challenge. */
const DENIAL_TABLE = {
  no_service: { status: 403, error: 'access_denied', challenge: undefined },
  service_unknown: { status: 403, error: 'access_denied', challenge: undefined },
  no_route: { status: 403, error: 'access_denied', challenge: undefined },
  path_invalid: { status: 400, error: 'invalid_request', challenge: undefined },
  credentials_missing: { status: 401, error: 'unauthorized', challenge: 'Bearer realm="bank-api"' },
  credentials_malformed: {
    status: 400,
    error: 'invalid_request',
    challenge: `Bearer realm="bank-api", error="invalid_request", error_description="${DESCRIPTION}"`,
  },
  token_too_large: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_malformed: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_issuer_unknown: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_algorithm_not_allowed: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_key_unknown: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_signature_invalid: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_expired: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_not_yet_valid: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_audience_mismatch: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_type_invalid: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_claims_invalid: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_lifetime_exceeded: { status: 401, error: 'invalid_token', challenge: invalidToken },
  token_issued_in_future: { status: 401, error: 'invalid_token', challenge: invalidToken },
  insufficient_scope: {
    status: 403,
    error: 'insufficient_scope',
    challenge: 'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"',
  },
  insufficient_user_authentication: {
    status: 401,
    error: 'insufficient_user_authentication',
    challenge: `Bearer realm="bank-api", error="insufficient_user_authentication", error_description="${DESCRIPTION}", acr_values="urn:bank:mfa urn:bank:hwk", max_age="300"`,
  },
  keys_unavailable: { status: 503, error: 'temporarily_unavailable', challenge: undefined },
  // On a route that accepts Bearer only: the DPoP scheme there is answered as no credentials.
  scheme_not_accepted: { status: 401, error: 'unauthorized', challenge: 'Bearer realm="bank-api"' },
  // Proof errors always go under DPoP (RFC 9449 section 7.1), the route's own schemes beside.
  dpop_proof_missing: INVALID_DPOP_PROOF,
  dpop_proof_multiple: INVALID_DPOP_PROOF,
  dpop_proof_malformed: INVALID_DPOP_PROOF,
  dpop_proof_type_invalid: INVALID_DPOP_PROOF,
  dpop_proof_algorithm_not_allowed: INVALID_DPOP_PROOF,
  dpop_proof_key_invalid: INVALID_DPOP_PROOF,
  dpop_proof_signature_invalid: INVALID_DPOP_PROOF,
  dpop_proof_claims_invalid: INVALID_DPOP_PROOF,
  dpop_proof_method_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_uri_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_expired: INVALID_DPOP_PROOF,
  dpop_proof_issued_in_future: INVALID_DPOP_PROOF,
  dpop_proof_token_hash_mismatch: INVALID_DPOP_PROOF,
  dpop_proof_replayed: INVALID_DPOP_PROOF,
  dpop_nonce_missing: USE_DPOP_NONCE,
  dpop_nonce_invalid: USE_DPOP_NONCE,
  dpop_proof_quota_exceeded: { status: 429, error: 'too_many_requests', challenge: undefined },
  dpop_replay_cache_full: { status: 503, error: 'temporarily_unavailable', challenge: undefined },
  dpop_replay_store_unavailable: { status: 503, error: 'temporarily_unavailable', challenge: undefined },
  binding_dpop_scheme_required: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_token_not_dpop_bound: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_dpop_key_mismatch: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_certificate_missing: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_certificate_invalid: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_certificate_mismatch: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_not_accepted: { status: 401, error: 'invalid_token', challenge: invalidToken },
  binding_required: { status: 401, error: 'invalid_token', challenge: invalidToken },
  service_unavailable: { status: 503, error: 'temporarily_unavailable', challenge: undefined },
} satisfies Record<
  DenialCode,
  { status: number; error: string; challenge: string | readonly string[] | undefined }
>;

function denial(code: DenialCode, extra: Partial<Decision & { kind: 'deny' }> = {}): Decision {
  return {
    kind: 'deny',
    code,
    description: DESCRIPTION,
    route: transfer,
    ...(code === 'insufficient_scope'
      ? { requiredScopes: ['transfer:funds'], missingScopes: ['transfer:funds'] }
      : {}),
    ...(code === 'insufficient_user_authentication'
      ? { stepUp: { acrValues: ['urn:bank:mfa', 'urn:bank:hwk'], maxAgeSeconds: 300 } }
      : {}),
    ...extra,
  };
}

function deny(decision: Decision, realm = 'bank-api') {
  const answer = answerForDecision(decision, realm);
  if (answer.kind !== 'deny') throw new Error(`expected a denial, got ${JSON.stringify(answer)}`);
  return answer;
}

function allow(decision: Decision) {
  const answer = answerForDecision(decision, 'bank-api');
  if (answer.kind !== 'allow') throw new Error(`expected an allow, got ${JSON.stringify(answer)}`);
  return answer;
}

describe('answerForDecision: denials', () => {
  const rows = Object.entries(DENIAL_TABLE) as [DenialCode, (typeof DENIAL_TABLE)[DenialCode]][];

  it.each(rows)('answers %s with its status and statusForDenial agrees', (code, row) => {
    expect(deny(denial(code)).status).toBe(row.status);
    expect(statusForDenial(code)).toBe(row.status);
  });

  it.each(rows)('answers %s with a JSON body {error, error_description}', (code, row) => {
    expect(JSON.parse(deny(denial(code)).body)).toStrictEqual({
      error: row.error,
      error_description: DESCRIPTION,
    });
  });

  it.each(rows)('answers %s as application/json that must not be cached', (code) => {
    const { headers } = deny(denial(code));

    expect(headers.filter(([name]) => name === 'content-type')).toEqual([
      ['content-type', 'application/json'],
    ]);
    expect(headers.filter(([name]) => name === 'cache-control')).toEqual([['cache-control', 'no-store']]);
  });

  it.each(rows)('answers %s with exactly the right WWW-Authenticate, or none', (code, row) => {
    const challenges = deny(denial(code))
      .headers.filter(([name]) => name === 'www-authenticate')
      .map(([, value]) => value);

    expect(challenges).toEqual(
      row.challenge === undefined ? [] : typeof row.challenge === 'string' ? [row.challenge] : row.challenge,
    );
  });

  it('tells a client over its share of the replay store when to retry: 429 with Retry-After (RFC 6585 section 4)', () => {
    const answer = deny(denial('dpop_proof_quota_exceeded', { retryAfterSeconds: 12.2 }));

    expect(answer.status).toBe(429);
    expect(answer.headers).toEqual([
      ['content-type', 'application/json'],
      ['cache-control', 'no-store'],
      ['retry-after', '13'], // whole seconds, rounded up (RFC 9110 section 10.2.3)
    ]);
  });

  it('answers a missing token with a bare challenge: no error, even though the decision has a description', () => {
    const answer = deny(denial('credentials_missing', { description: 'a bearer token is required' }));

    expect(answer.headers).toContainEqual(['www-authenticate', 'Bearer realm="bank-api"']);
    expect(JSON.parse(answer.body)).toEqual({
      error: 'unauthorized',
      error_description: 'a bearer token is required',
    });
  });

  it('asks for every scope the route requires, not only the missing ones, and no description', () => {
    const answer = deny(
      denial('insufficient_scope', {
        route: international,
        requiredScopes: ['transfer:funds', 'transfer:abroad'],
        missingScopes: ['transfer:abroad'],
        description: 'the token lacks a required scope: transfer:abroad',
      }),
    );

    expect(answer.status).toBe(403);
    expect(answer.headers).toContainEqual([
      'www-authenticate',
      'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds transfer:abroad"',
    ]);
  });

  it('names the realm it is given in every challenge', () => {
    expect(deny(denial('credentials_missing'), 'other-realm').headers).toContainEqual([
      'www-authenticate',
      'Bearer realm="other-realm"',
    ]);
    expect(deny(denial('token_expired'), 'other-realm').headers).toContainEqual([
      'www-authenticate',
      `Bearer realm="other-realm", error="invalid_token", error_description="${DESCRIPTION}"`,
    ]);
  });

  it('sends nothing but content-type, cache-control and the challenge', () => {
    for (const code of Object.keys(DENIAL_TABLE) as DenialCode[]) {
      const names = deny(denial(code)).headers.map(([name]) => name);
      expect(
        names.every((name) => ['content-type', 'cache-control', 'www-authenticate'].includes(name)),
      ).toBe(true);
    }
  });
});

describe('answerForDecision: allow', () => {
  it('sets the subject and the granted scopes for the upstream', () => {
    const answer = allow({
      kind: 'allow',
      route: transfer,
      identity: {
        issuer: 'https://idp.example/',
        subject: 'alice',
        scopes: new Set(['transfer:funds', 'view:balance']),
        ...NO_LOGIN_CLAIMS,
      },
    });

    expect(answer.setHeaders).toEqual([
      [IDENTITY_HEADERS.subject, 'alice'],
      [IDENTITY_HEADERS.scopes, 'transfer:funds view:balance'],
    ]);
    expect(answer.removeHeaders).toEqual([]);
  });

  it('uses the x-auth-subject and x-auth-scopes header names', () => {
    expect(IDENTITY_HEADERS).toEqual({ subject: 'x-auth-subject', scopes: 'x-auth-scopes' });
  });

  it('removes both identity headers on a public route, so a client cannot spoof them', () => {
    const answer = allow({ kind: 'allow', route: healthz });

    expect(answer.setHeaders).toEqual([]);
    expect(answer.removeHeaders).toEqual(['x-auth-subject', 'x-auth-scopes']);
  });

  it('removes the subject header when the token has no sub', () => {
    const answer = allow({
      kind: 'allow',
      route: transfer,
      identity: {
        issuer: 'https://idp.example/',
        subject: undefined,
        scopes: new Set(['transfer:funds']),
        ...NO_LOGIN_CLAIMS,
      },
    });

    expect(answer.setHeaders).toEqual([['x-auth-scopes', 'transfer:funds']]);
    expect(answer.removeHeaders).toEqual(['x-auth-subject']);
  });

  it('removes the scopes header, rather than setting it empty, when the token grants no scope', () => {
    const answer = allow({
      kind: 'allow',
      route: transfer,
      identity: { issuer: 'https://idp.example/', subject: 'alice', scopes: new Set(), ...NO_LOGIN_CLAIMS },
    });

    expect(answer.setHeaders).toEqual([['x-auth-subject', 'alice']]);
    expect(answer.removeHeaders).toEqual(['x-auth-scopes']);
  });

  it('removes both when the token has neither sub nor scopes', () => {
    const answer = allow({
      kind: 'allow',
      route: transfer,
      identity: { issuer: 'https://idp.example/', subject: undefined, scopes: new Set(), ...NO_LOGIN_CLAIMS },
    });

    expect(answer.setHeaders).toEqual([]);
    expect(answer.removeHeaders).toEqual(['x-auth-subject', 'x-auth-scopes']);
  });
});

describe('answerForDecision: insufficient_user_authentication (RFC 9470 section 3)', () => {
  const CHALLENGE_START = 'Bearer realm="bank-api", error="insufficient_user_authentication"';

  function stepUpAnswer(
    stepUp: { acrValues?: readonly string[]; maxAgeSeconds?: number } | undefined,
    description: string,
  ) {
    const decision: Decision = {
      kind: 'deny',
      code: 'insufficient_user_authentication',
      description,
      route: transfer,
      ...(stepUp === undefined ? {} : { stepUp }),
    };
    return deny(decision);
  }

  it.each([
    {
      asks: 'acr_values only',
      stepUp: { acrValues: ['urn:bank:mfa'] },
      description: 'a stronger authentication is required',
      parameters: ', acr_values="urn:bank:mfa"',
    },
    {
      asks: 'every acceptable acr value, space-separated',
      stepUp: { acrValues: ['urn:bank:mfa', 'urn:bank:hwk'] },
      description: 'a stronger authentication is required',
      parameters: ', acr_values="urn:bank:mfa urn:bank:hwk"',
    },
    {
      asks: 'max_age only',
      stepUp: { maxAgeSeconds: 600 },
      description: 'the authentication must be at most 600 seconds old',
      parameters: ', max_age="600"',
    },
    {
      asks: 'a max_age of 0',
      stepUp: { maxAgeSeconds: 0 },
      description: 'the authentication must be at most 0 seconds old',
      parameters: ', max_age="0"',
    },
    {
      asks: 'acr_values then max_age',
      stepUp: { maxAgeSeconds: 300, acrValues: ['urn:bank:mfa'] },
      description:
        'a stronger authentication is required; the authentication must be at most 300 seconds old',
      parameters: ', acr_values="urn:bank:mfa", max_age="300"',
    },
    {
      asks: 'neither, for an empty stepUp',
      stepUp: {},
      description: 'a stronger authentication is required',
      parameters: '',
    },
    {
      asks: 'neither, without stepUp',
      stepUp: undefined,
      description: 'a stronger authentication is required',
      parameters: '',
    },
  ])('challenges with $asks', ({ stepUp, description, parameters }) => {
    const answer = stepUpAnswer(stepUp, description);

    expect(answer.status).toBe(401);
    expect(answer.headers).toEqual([
      ['content-type', 'application/json'],
      ['cache-control', 'no-store'],
      ['www-authenticate', `${CHALLENGE_START}, error_description="${description}"${parameters}`],
    ]);
    expect(JSON.parse(answer.body)).toStrictEqual({
      error: 'insufficient_user_authentication',
      error_description: description,
    });
  });

  it('answers what decideAccess found for a compiled route with a weak and stale login', () => {
    const stepUpService = compileService(
      '{ methods: [POST], path: /transfer, scopes: [transfer:funds], authentication: { acr_values: [urn:bank:mfa, urn:bank:hwk], amr: [mfa], max_age: 5m } }',
    );
    const route = stepUpService.routes[0] as CompiledRoute & { access: { kind: 'protected' } };
    const nowMs = Date.UTC(2030, 0, 1);
    const decision = decideAccess(
      route,
      {
        kind: 'verified',
        token: {
          issuer: 'https://idp.example/',
          subject: 'alice',
          scopes: new Set(['transfer:funds']),
          confirmation: {},
          acr: 'urn:bank:pwd',
          amr: new Set(['pwd']),
          authTime: nowMs / 1000 - 301,
          audiences: new Set(['https://my-banking-api']),
          headerClaims: new Map(),
        },
      },
      nowMs,
    );

    expect(deny(decision).headers).toContainEqual([
      'www-authenticate',
      `${CHALLENGE_START}, error_description="a stronger authentication is required; ` +
        'the authentication must be at most 300 seconds old", acr_values="urn:bank:mfa urn:bank:hwk", max_age="300"',
    ]);
  });
});
