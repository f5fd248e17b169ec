import { basename } from 'node:path';
import { normalisedRequestHost } from '../authz/request-host.js';
import { formatDuration } from '../policy/duration.js';
import type { PolicyFinding } from '../policy/policy-findings.js';
import type {
  ConstraintMemberSummary,
  Explanation,
  IssuerLimits,
  ResponseSummary,
  RouteRequirements,
  ServiceSummary,
  TokenSummary,
} from './explain-request.js';
import { formatEpochSeconds } from './instant.js';
import { printable as shown } from './terminal-text.js';

/** The explanation for people: one labelled block per question, values quoted when not plain text. */
export function formatExplanation(explanation: Explanation, nowMs: number): string {
  const lines: string[] = [];
  const block = (label: string, first: string, ...rest: string[]) => {
    lines.push(`${label.padEnd(10)} ${first}`);
    for (const line of rest) lines.push(`${''.padEnd(10)} ${line}`);
  };
  const { request, route, token, decision } = explanation;

  const facts: string[] = [];
  if (request.host !== undefined) facts.push(`host ${shown(request.host)}`);
  if (request.service !== undefined)
    facts.push(`named service ${shown(request.service)} (ext_authz context_extensions)`);
  if (request.scheme === 'DPoP') facts.push('Authorization: DPoP (the token with the DPoP scheme)');
  if (request.dpop_proof) facts.push("DPoP proof: given as valid, signed with the token's key (not checked)");
  if (request.client_certificate)
    facts.push("client certificate: given as the token's, on the TLS connection (not checked)");
  block('request', `${shown(request.method)} ${shown(request.target)}`, ...facts);

  const { service } = explanation;
  // A file without services, asked about without --host or --service, reads as it always did.
  const implicitOnly =
    service.name !== null &&
    service.chosen_by === 'every_host' &&
    request.host === undefined &&
    request.service === undefined;
  if (!implicitOnly) block('service', ...serviceLines(service, request.host));

  const skipped = explanation.skipped.map(
    (s) => `skipped ${s.path} (line ${s.line}, ${s.name}): ${shown(s.reason)}`,
  );
  if (explanation.skipped_not_listed > 0) {
    skipped.push(`... and ${explanation.skipped_not_listed} more routes that do not match`);
  }
  if (service.name === null) {
    block('route', 'none tried: no service was chosen, so no routes apply');
  } else if (request.path_problem !== undefined) {
    block(
      'route',
      `none tried: the path cannot be matched safely (${request.path_problem})`,
      'the request is refused before any route is looked at',
    );
  } else if (route === null) {
    block('route', `none: no route has both a method and a pattern matching this request`, ...skipped);
  } else {
    const methods =
      route.methods === null ? 'applies to every method' : `lists method ${shown(request.method)}`;
    const which = `the first route in file order that ${methods} and whose pattern matches ${shown(request.path ?? '')}`;
    block('route', `${route.path} (line ${route.line}): ${route.name}`, which, ...skipped);
    block(
      'requires',
      ...requirementLines(route.requires, service.name !== null && service.chosen_by === 'every_host'),
    );
  }
  const [firstFinding, ...moreFindings] = explanation.findings.flatMap(findingLines);
  if (firstFinding !== undefined) block('findings', firstFinding, ...moreFindings);

  const tokenBlock = tokenLines(token, nowMs);
  // The server reads credentials only for a protected route: say so rather than let the facts mislead.
  if (token.presented !== 'none' && service.name === null)
    tokenBlock.push('not looked at: no service was chosen');
  else if (token.presented !== 'none' && request.path_problem !== undefined)
    tokenBlock.push('not looked at: the path was refused first');
  else if (token.presented !== 'none' && route === null) tokenBlock.push('not looked at: no route matched');
  else if (token.presented !== 'none' && route?.requires.public === true)
    tokenBlock.push('not looked at: a public route needs no token');
  else if (token.service_refused !== undefined && service.name !== null)
    tokenBlock.push(
      `not accepted by service ${shown(service.name)}: ${token.service_refused.reason}: ${shown(token.service_refused.description)}`,
    );
  block('token', ...tokenBlock);

  if (decision.kind === 'allow') {
    const would = decision.would_deny;
    block(
      'decision',
      would === undefined
        ? 'allow'
        : `allow, because the route is report-only: it would deny ${would.code}: ${would.description}`,
    );
  } else {
    block('decision', `deny ${decision.code ?? ''}: ${decision.description ?? ''}`);
  }

  block('response', ...responseLines(explanation.response));
  if (explanation.would_deny_response !== undefined) {
    block('would send', ...responseLines(explanation.would_deny_response), '(report-only: logged, not sent)');
  }
  return lines.join('\n') + '\n';
}

/**
 * `error public_catch_all (line 41): public route * /** matches every path, ...`; an accepted finding says
 * so, with the reason, on the next line.
 */
function findingLines(finding: PolicyFinding): string[] {
  const where =
    finding.file === undefined
      ? `line ${finding.line}`
      : `${shown(basename(finding.file))} line ${finding.line}`;
  const head = `${finding.level} ${finding.code} (${where})`;
  if (finding.accepted === undefined) return [`${head}: ${finding.message}`];
  return [`${head}, accepted: ${finding.message}`, `  accepted because: ${shown(finding.accepted.reason)}`];
}

function serviceLines(service: ServiceSummary, host: string | undefined): [string, ...string[]] {
  if (service.name === null) {
    const why =
      service.code === 'service_unknown'
        ? 'the proxy named a service this policy does not have'
        : host === undefined
          ? 'no host given (--host), and every service is chosen by its hosts or by name (--service)'
          : normalisedRequestHost(host) === undefined
            ? `${JSON.stringify(host)} is not a host name, so no service's hosts match it`
            : `no service lists host ${shown(normalisedRequestHost(host) ?? host)}, or a wildcard matching it`;
    return [`none (${service.code}): ${why}`, 'denied 403 with no challenge: there is no realm to name'];
  }
  // In a policy directory the line is in the service's own file, named with its owner.
  const where =
    service.file === undefined
      ? `line ${service.line}`
      : `${shown(basename(service.file))} line ${service.line}, owner ${shown(service.owner ?? '')}`;
  const head = `${shown(service.name)} (${where}, realm ${shown(service.realm)})`;
  switch (service.chosen_by) {
    case 'name':
      return [`${head}: named by the proxy (context_extensions), which takes precedence over the host`];
    case 'every_host':
      return [`${head}: the policy has no services, so this one answers every host`];
    case 'host':
      return [`${head}: it lists host ${shown(service.matched ?? '')}`];
    case 'wildcard':
      return [
        `${head}: it lists ${shown(service.matched ?? '')}, which matches ${shown(normalisedRequestHost(host) ?? '')}`,
        'no service lists that host exactly (exact names are tried first)',
      ];
  }
}

function requirementLines(requires: RouteRequirements, implicit: boolean): [string, ...string[]] {
  const mode =
    requires.mode === 'enforce'
      ? 'mode: enforce'
      : 'mode: report-only (a denial is logged as would_deny and the request allowed)';
  if (requires.public) return ['nothing: a public route, no token needed', mode];
  const schemes = requires.schemes ?? [];
  const binding = (requires.sender_constraint ?? []).map((c) => {
    const member = (name: string, m: ConstraintMemberSummary) =>
      `${name} ${m.value} (${m.from === 'service' && implicit ? 'top level' : m.from})`;
    return `sender_constraint for ${shown(c.issuer)}: ${member('dpop', c.dpop)}, ${member('mtls', c.mtls)}`;
  });
  const scopes =
    requires.scopes === undefined || requires.scopes.length === 0
      ? 'scopes: none (any valid token)'
      : `scopes: ${requires.scopes.join(' ')} (all of them)`;
  const auth = requires.authentication;
  const login: string[] = [];
  if (auth?.acr_values !== undefined) login.push(`acr one of ${auth.acr_values.join(', ')}`);
  if (auth?.amr !== undefined) login.push(`amr including ${auth.amr.join(', ')}`);
  if (auth?.max_age !== undefined) login.push(`auth_time at most ${auth.max_age} s ago`);
  return [
    scopes,
    `login: ${login.length === 0 ? 'any' : login.join('; ')}`,
    `schemes: ${schemes.length === 0 ? 'none (no issuer of the service is accepted here)' : schemes.join(', ')}`,
    ...binding,
    mode,
  ];
}

function tokenLines(token: TokenSummary, nowMs: number): [string, ...string[]] {
  if (token.presented === 'none') return ['none presented (no Authorization header)'];
  if (token.refused !== undefined) {
    const lines: [string, ...string[]] = [
      `${token.note}: ${token.refused.reason}: ${shown(token.refused.description)}`,
    ];
    const u = token.unverified;
    if (u !== undefined && Object.keys(u).length > 0) {
      const parts = [
        u.iss === undefined ? undefined : `iss ${shown(u.iss)}`,
        u.sub === undefined ? undefined : `sub ${shown(u.sub)}`,
        u.exp === undefined ? undefined : `exp ${formatEpochSeconds(u.exp)}`,
      ].filter((part) => part !== undefined);
      lines.push(`unverified claims: ${parts.join(', ')}`);
    }
    if (token.limits !== undefined) lines.push(limitsLine(token.limits));
    return lines;
  }
  const dash = (value: string | undefined) => (value === undefined || value === '' ? '-' : shown(value));
  const authTime =
    token.auth_time === undefined
      ? '-'
      : `${formatEpochSeconds(token.auth_time)} (${Math.floor(nowMs / 1000) - token.auth_time} s before now)`;
  return [
    token.note,
    `issuer:    ${dash(token.issuer)}`,
    `sub:       ${dash(token.sub)}`,
    `scopes:    ${dash(token.scopes?.join(' '))}`,
    `acr:       ${dash(token.acr)}`,
    `amr:       ${dash(token.amr?.join(' '))}`,
    `auth_time: ${authTime}`,
    `bound:     ${bindingText(token.binding)}`,
    ...(token.limits === undefined ? [] : [limitsLine(token.limits)]),
  ];
}

/** `DPoP key jkt ...`, `client certificate x5t#S256 ...`, or `no (a bearer token)`. */
function bindingText(binding: TokenSummary['binding']): string {
  const parts = [
    binding?.jkt === undefined ? undefined : `DPoP key, jkt ${shown(binding.jkt)}`,
    binding?.['x5t#S256'] === undefined
      ? undefined
      : `client certificate, x5t#S256 ${shown(binding['x5t#S256'])}`,
  ].filter((part) => part !== undefined);
  return parts.length === 0 ? 'no (a bearer token: no cnf)' : parts.join('; ');
}

/** `limits:    max_token_lifetime 1d, clock_tolerance 30s, jwks_max_stale 1d, jwks_fetch_wait 500ms` */
function limitsLine(limits: IssuerLimits): string {
  return `limits:    ${[
    `max_token_lifetime ${formatDuration(limits.max_token_lifetime)}`,
    `clock_tolerance ${formatDuration(limits.clock_tolerance)}`,
    `jwks_max_stale ${formatDuration(limits.jwks_max_stale)}`,
    `jwks_fetch_wait ${formatDuration(limits.jwks_fetch_wait_ms, true)}`,
  ].join(', ')}`;
}

function responseLines(response: ResponseSummary): [string, ...string[]] {
  if (response.kind === 'deny') {
    return [
      String(response.status),
      // One line per header as sent: each challenge on its own.
      ...Object.entries(response.headers).flatMap(([name, value]) =>
        name === 'www-authenticate' && response.www_authenticate !== undefined
          ? response.www_authenticate.map((challenge) => `${name}: ${challenge}`)
          : [`${name}: ${value}`],
      ),
      `body: ${response.body}`,
    ];
  }
  return [
    'passed to the upstream, which answers',
    ...Object.entries(response.set_headers).map(([name, value]) => `sets ${name}: ${shown(value)}`),
    ...response.remove_headers.map((name) => `removes ${name} (any client copy)`),
  ];
}
