import { decodeJwt } from 'jose';
import { createKeyRing } from '../authn/key-ring.js';
import { fetchKeySetOverHttp } from '../authn/read-key-set.js';
import { verifyAccessToken } from '../authn/verify-access-token.js';
import { UsageError } from '../args/usage-error.js';
import type { AuthScheme } from '../authz/credentials.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { loadPolicy, loadPolicyDirectory, policyFromRead, readPolicyText } from '../policy/load-policy.js';
import { policyFindings, type PolicyFinding } from '../policy/policy-findings.js';
import { isPolicyDirectory } from '../policy/read-policy-directory.js';
import { YamlLocations } from '../policy/yaml-locations.js';
import type { CommandIo } from '../command/command-io.js';
import { explainRequest, type ExplainCredentials } from './explain-request.js';
import { formatExplanation } from './explanation-text.js';
import { verificationForGivenClaims } from './given-claims.js';
import { parseInstant } from './instant.js';

import { parseOpsArgs } from '../args/parse-command-args.js';

/**
 * `authz explain --policy FILE --method M --path P [--host HOST] [--service NAME] [--token JWT | --claims
 * JSON] [--scheme bearer|dpop] [--dpop-proof] [--client-cert] [--now ISO] [--json]`: what the server would
 * do with one request, and why, with the policy findings about its route and service
 * (docs/policy-checks.md). Exit 0 whatever the decision (it explains).
 *
 * `--scheme` is the `Authorization` scheme the token comes with (default bearer; RFC 9449 section 7.1).
 * `--dpop-proof` says the request carries a valid DPoP proof signed with the key the token is bound to
 * (`cnf.jkt`); `--client-cert` that the connection presents the certificate it is bound to
 * (`cnf["x5t#S256"]`). They are taken as said: the proofs themselves are the server's to check
 * (docs/sender-constraints.md), the question here is what the policy does with them.
 *
 * `--host` is the request's Host (`:authority`), which picks the service of a policy with `services`;
 * `--service` is the name Envoy would send in ext_authz `context_extensions` (`service`), which takes
 * precedence over the host.
 *
 * With `--token` the token is verified for real, with the policy's keys (so `jwks_file` must exist, and
 * key URLs are fetched). With `--claims` the JSON is taken as the verified claims of the issuer its `iss`
 * names (the policy's first issuer without one), and the output says they were not verified. The token
 * itself is never printed.
 *
 * @throws UsageError for bad arguments; PolicyError when the policy cannot be used.
 */
export async function explainCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseOpsArgs(
    argv,
    {
      policy: { type: 'string' },
      method: { type: 'string' },
      path: { type: 'string' },
      host: { type: 'string' },
      service: { type: 'string' },
      token: { type: 'string' },
      claims: { type: 'string' },
      now: { type: 'string' },
      json: { type: 'boolean' },
      scheme: { type: 'string' },
      'dpop-proof': { type: 'boolean' },
      'client-cert': { type: 'boolean' },
    },
    { min: 0, max: 0, name: '' },
  );
  const required = (flag: string, what: string): string => {
    const value = values[flag];
    if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag} ${what} is required`);
    return value;
  };
  const policyFile = required('policy', 'FILE');
  const method = required('method', 'METHOD');
  const target = required('path', 'PATH');
  const host = values['host'] as string | undefined;
  if (host === '') throw new UsageError('--host is empty (the Host header value, e.g. bank.example)');
  const serviceName = values['service'] as string | undefined;
  if (serviceName === '') throw new UsageError('--service is empty (a service name of the policy)');
  const token = values['token'] as string | undefined;
  const claimsText = values['claims'] as string | undefined;
  if (token !== undefined && claimsText !== undefined) {
    throw new UsageError('give --token or --claims, not both');
  }
  if (token === '') throw new UsageError('--token is empty');
  const claims = claimsText === undefined ? undefined : parseClaims(claimsText);
  const scheme = parseScheme(values['scheme'] as string | undefined);
  const dpopProof = values['dpop-proof'] === true;
  const clientCertificate = values['client-cert'] === true;
  if (token === undefined && claims === undefined) {
    // Without credentials there is no Authorization header to give a scheme, nor a key or certificate to prove.
    const given = [
      ...(values['scheme'] === undefined ? [] : ['--scheme']),
      ...(dpopProof ? ['--dpop-proof'] : []),
      ...(clientCertificate ? ['--client-cert'] : []),
    ];
    if (given.length > 0) throw new UsageError(`${given.join(', ')} need --token or --claims`);
  }
  const nowText = values['now'] as string | undefined;
  let nowMs = io.now();
  if (nowText !== undefined) {
    const parsed = parseInstant(nowText);
    if (parsed === undefined) {
      throw new UsageError(`--now: "${nowText}" is not a date-time such as 2026-11-27T12:00:00Z`);
    }
    nowMs = parsed;
  }

  // Only a real token needs the keys; claims and no token can be explained on a fresh checkout.
  const { policy, findings } = await policyWithFindings(policyFile, token !== undefined);
  let credentials: ExplainCredentials;
  if (token !== undefined) credentials = await verifiedToken(policy, token, nowMs);
  else if (claims !== undefined)
    credentials = { kind: 'claims', verification: verificationForGivenClaims(policy, claims) };
  else credentials = { kind: 'none' };

  const explanation = await explainRequest(
    policy,
    {
      method,
      target,
      ...(host === undefined ? {} : { host }),
      ...(serviceName === undefined ? {} : { serviceName }),
      scheme,
      dpopProof,
      clientCertificate,
    },
    credentials,
    nowMs,
    findings,
  );
  io.out(
    values['json'] === true
      ? JSON.stringify(explanation, null, 2) + '\n'
      : formatExplanation(explanation, nowMs),
  );
  return 0;
}

/**
 * The policy to explain with and its findings. A file is read once: compiled, then located for the
 * findings. A directory is judged as `serve` judges it at start; a refused file refuses it, as
 * `loadPolicy` does (the tools judge the policy as written), else its findings are its files'.
 *
 * @throws PolicyError when the policy cannot be used.
 */
async function policyWithFindings(
  path: string,
  requireKeyFiles: boolean,
): Promise<{ policy: CompiledPolicy; findings: readonly PolicyFinding[] }> {
  if (await isPolicyDirectory(path)) {
    const judgement = await loadPolicyDirectory(path, undefined, { requireKeyFiles });
    // loadPolicy words the refusal of every refused file; judging again costs a few milliseconds.
    if (judgement.verdicts.some((verdict) => !verdict.inForce)) await loadPolicy(path, { requireKeyFiles });
    return { policy: judgement.inForce.policy, findings: judgement.inForce.findings };
  }
  const read = await readPolicyText(path);
  const policy = await policyFromRead(read, path, { requireKeyFiles });
  return { policy, findings: 'text' in read ? policyFindings(policy, new YamlLocations(read.text)) : [] };
}

/** `--scheme`: the `Authorization` scheme, case-insensitive as RFC 9110 section 11.1 has it; default Bearer. */
function parseScheme(text: string | undefined): AuthScheme {
  if (text === undefined) return 'Bearer';
  switch (text.toLowerCase()) {
    case 'bearer':
      return 'Bearer';
    case 'dpop':
      return 'DPoP';
    default:
      throw new UsageError(`--scheme: "${text}" is not bearer or dpop`);
  }
}

function parseClaims(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError('--claims is not valid JSON (e.g. \'{"scope": "view:balance"}\')');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('--claims must be a JSON object of claims');
  }
  return parsed as Record<string, unknown>;
}

/** Verifies the token as the server would, with a key ring of its own for this one request. */
async function verifiedToken(
  policy: CompiledPolicy,
  token: string,
  nowMs: number,
): Promise<ExplainCredentials> {
  const now = () => nowMs;
  let keyProblem: string | undefined;
  const keyRing = createKeyRing(policy, {
    fetchKeySet: fetchKeySetOverHttp,
    now,
    onFetch: (event) => {
      if (event.outcome === 'error') keyProblem = event.error;
    },
  });
  const verification = await verifyAccessToken(token, {
    policy,
    keysFor: (issuer) => keyRing.keysFor(issuer),
    now,
  });
  let unverified: { iss?: unknown; sub?: unknown; exp?: unknown } | undefined;
  if (verification.kind !== 'verified') {
    try {
      const { iss, sub, exp } = decodeJwt(token);
      unverified = { iss, sub, exp };
    } catch {
      unverified = undefined; // not even a readable JWT: nothing more to show
    }
  }
  return {
    kind: 'token',
    token,
    verification,
    ...(unverified === undefined ? {} : { unverified }),
    ...(keyProblem === undefined ? {} : { keyProblem }),
  };
}
