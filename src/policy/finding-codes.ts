/**
 * The registry of policy finding codes (docs/policy-checks.md): each stable code with its level, how to fix
 * what it reports, and whether a route's `accept_risks` may accept it. One table, as fastify keeps its
 * errors: the checks, `check-policy`, `explain`, the reload guard and the schema's enum all read it.
 */

/** How much a finding matters: `error` fails `check-policy` and a guarded reload, unless accepted. */
export type FindingLevel = 'error' | 'warning' | 'notice';

interface FindingCodeEntry {
  readonly level: FindingLevel;
  /** How to fix it, one sentence. */
  readonly fix: string;
  /** Whether it concerns one route, so that the route's `accept_risks` may accept it. */
  readonly route: boolean;
}

export const FINDING_CODES = Object.freeze({
  // Mistakes: the policy works, but probably not as meant.
  route_shadowed: {
    level: 'warning',
    route: true,
    fix: 'Move the route above the routes that take its requests, narrow those, or remove it.',
  },
  route_duplicate: { level: 'warning', route: true, fix: 'Remove one of the two routes.' },
  route_shadowed_weaker: {
    level: 'error',
    route: true,
    fix: 'Move the route above the routes that take its requests (or narrow those) so that its requirements apply, or require as much on them; accept the risk on the route only if those requests are meant to pass with less.',
  },
  scope_unknown: {
    level: 'warning',
    route: true,
    fix: 'Correct the scope, or add it to known_scopes if the identity provider grants it.',
  },
  scope_not_advertised: {
    level: 'warning',
    route: true,
    fix: 'Correct the scope, or declare known_scopes with the scopes the identity providers grant (route scopes are then checked against those instead).',
  },
  scopes_supported_unread: {
    level: 'notice',
    route: false,
    fix: 'Declare known_scopes with the scopes the routes use, or run check-policy where the discovery document can be read.',
  },
  scope_unused: {
    level: 'notice',
    route: false,
    fix: 'Remove it from known_scopes, or require it on the routes it is meant for.',
  },
  fetch_wait_exceeds_envoy_timeout: {
    level: 'warning',
    route: false,
    fix: "Set jwks_fetch_wait below Envoy's ext_authz timeout (the default is 500ms), or raise grpc_service.timeout in envoy/envoy.yaml.",
  },
  host_claimed_twice: { level: 'warning', route: false, fix: 'List the host under one service only.' },
  service_unreachable: {
    level: 'notice',
    route: false,
    fix: 'List the hosts it answers for, or have the proxy name it (ext_authz context_extensions service).',
  },
  wildcard_overlaps_exact: {
    level: 'notice',
    route: false,
    fix: "Nothing if the host is split off on purpose; otherwise list it under the wildcard's service only.",
  },
  // Risks: what the policy lets through.
  public_catch_all: {
    level: 'error',
    route: true,
    fix: 'Make public only the paths meant to be public (/healthz, /app/**), each with its methods, and require scopes on the rest.',
  },
  public_any_method: {
    level: 'warning',
    route: true,
    fix: 'List the methods the public route is for, e.g. methods: [GET, HEAD].',
  },
  public_write_method: {
    level: 'warning',
    route: true,
    fix: 'Require a token with a scope for writing methods, or accept the risk on the route (accept_risks) with the reason.',
  },
  scopes_empty_on_write: {
    level: 'warning',
    route: true,
    fix: 'Require the scope that grants this write, or list only reading methods on the route.',
  },
  report_only_policy: {
    level: 'error',
    route: false,
    fix: 'Remove the top-level mode: report-only; trial a rule with mode: report-only on its route instead.',
  },
  report_only_service: {
    level: 'error',
    route: false,
    fix: "Remove the service's mode: report-only; trial a rule with mode: report-only on its route instead.",
  },
  report_only_write_route: {
    level: 'warning',
    route: true,
    fix: 'Enforce the route once its would_deny log lines look right, or limit the trial to reading methods.',
  },
  issuer_sender_constraint_weakened: {
    level: 'error',
    route: true,
    fix: "Remove the weaker sender_constraint so that the issuer's binding applies, or accept the risk on the route (accept_risks) with the reason, e.g. while its clients move to DPoP; a service or the top level cannot accept it: set the weaker value on the routes that need it.",
  },
  sender_constraint_weakened: {
    level: 'warning',
    route: true,
    fix: "Remove the route's weaker sender_constraint so that its service's binding applies, or accept the risk on the route (accept_risks) with the reason.",
  },
  public_origin_cleartext: {
    level: 'warning',
    route: false,
    fix: 'Use https for the public origin; http is for a loopback address (127.0.0.1, localhost) in development.',
  },
  issuer_typ_unchecked: {
    level: 'notice',
    route: false,
    fix: 'Set require_typ: at+jwt if the issuer issues RFC 9068 access tokens (Okta and Entra do not).',
  },
  token_lifetime_long: {
    level: 'notice',
    route: false,
    fix: 'Lower max_token_lifetime to what the identity provider issues (hours, not weeks).',
  },
  risk_acceptance_unused: {
    level: 'notice',
    route: false,
    fix: 'Remove the accept_risks entry: it accepts nothing now and would hide a risk added later.',
  },
} as const satisfies Record<string, FindingCodeEntry>);

/** Every finding code (docs/policy-checks.md). */
export type FindingCode = keyof typeof FINDING_CODES;

/** The codes a route's `accept_risks` may name (the schema's enum lists the same). */
export const ROUTE_FINDING_CODES: readonly FindingCode[] = Object.freeze(
  (Object.keys(FINDING_CODES) as FindingCode[]).filter((code) => FINDING_CODES[code].route),
);
