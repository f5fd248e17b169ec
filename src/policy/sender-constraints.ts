import type {
  AcceptedSchemes,
  CompiledRoute,
  CompiledService,
  ConstraintSetting,
  IssuerPolicy,
  SenderConstraint,
  SenderConstraintSetting,
} from './compiled-policy.js';

/** What a route gets from its `sender_constraint` (docs/sender-constraints.md), built at load. */
export interface RouteConstraints {
  readonly senderConstraints: ReadonlyMap<string, SenderConstraint>;
  readonly schemes: AcceptedSchemes;
}

/** The members of `sender_constraint`, in the order they are shown. */
export const CONSTRAINT_MEMBERS = Object.freeze(['dpop', 'mtls'] as const);

/** A member of `sender_constraint`: `dpop` (RFC 9449) or `mtls` (RFC 8705). */
export type ConstraintMember = (typeof CONSTRAINT_MEMBERS)[number];

/** Where the value of a member in force on a route comes from: the most specific level that sets it. */
export type ConstraintSource = 'route' | 'service' | 'issuer' | 'default';

const NO_SCHEMES: AcceptedSchemes = Object.freeze({ bearer: false, dpop: false });
/** A public route reads no token: no constraint is in force on it. */
const PUBLIC_ROUTE: RouteConstraints = Object.freeze({
  senderConstraints: Object.freeze(new Map<string, SenderConstraint>()),
  schemes: NO_SCHEMES,
});

/**
 * Resolves the constraints of routes, sharing what is equal: there are nine `SenderConstraint` values and
 * four `AcceptedSchemes`, and the routes of a service differ only by the members they set themselves, so a
 * policy of 10,000 routes holds a handful of maps rather than 10,000 (one per distinct content). One per
 * compilation.
 */
export class SenderConstraintResolver {
  private readonly constraints = new Map<string, SenderConstraint>();
  private readonly schemes = new Map<string, AcceptedSchemes>();
  private readonly byContent = new Map<string, RouteConstraints>();

  /**
   * The resolver for the routes of one service.
   *
   * @param trusted the issuers the service trusts, in a stable order.
   * @param service the service's `sender_constraint` (for an explicit service, over the top level's).
   */
  forService(
    trusted: readonly IssuerPolicy[],
    service: SenderConstraintSetting,
  ): (route: SenderConstraintSetting, isPublic: boolean) => RouteConstraints {
    const byRouteSetting = new Map<string, RouteConstraints>();
    return (route, isPublic) => {
      if (isPublic) return PUBLIC_ROUTE;
      const key = settingKey(route);
      let resolved = byRouteSetting.get(key);
      if (resolved === undefined) {
        resolved = this.resolve(trusted, service, route);
        byRouteSetting.set(key, resolved);
      }
      return resolved;
    };
  }

  private resolve(
    trusted: readonly IssuerPolicy[],
    service: SenderConstraintSetting,
    route: SenderConstraintSetting,
  ): RouteConstraints {
    const entries = trusted.map(
      (issuer) =>
        [
          issuer.issuer,
          this.constraint(
            route.dpop ?? service.dpop ?? issuer.senderConstraint.dpop ?? 'off',
            route.mtls ?? service.mtls ?? issuer.senderConstraint.mtls ?? 'off',
          ),
        ] as const,
    );
    // RFC 9449 section 7.1: Bearer unless every issuer's tokens must be DPoP-bound (a certificate-bound
    // token goes as Bearer, RFC 8705 section 3, so Bearer stays where both bindings are required and either
    // is enough); DPoP wherever some issuer's DPoP-bound tokens are taken.
    const bearer = entries.some(([, c]) => c.dpop !== 'required' || c.mtls === 'required');
    const dpop = entries.some(([, c]) => c.dpop !== 'off');
    const content = `${bearer} ${dpop}\n${entries.map(([iss, c]) => `${c.dpop} ${c.mtls} ${iss}`).join('\n')}`;
    let shared = this.byContent.get(content);
    if (shared === undefined) {
      shared = Object.freeze({
        senderConstraints: Object.freeze(new Map(entries)),
        schemes: this.acceptedSchemes(bearer, dpop),
      });
      this.byContent.set(content, shared);
    }
    return shared;
  }

  private constraint(dpop: ConstraintSetting, mtls: ConstraintSetting): SenderConstraint {
    const key = `${dpop} ${mtls}`;
    let constraint = this.constraints.get(key);
    if (constraint === undefined) {
      constraint = Object.freeze({ dpop, mtls });
      this.constraints.set(key, constraint);
    }
    return constraint;
  }

  private acceptedSchemes(bearer: boolean, dpop: boolean): AcceptedSchemes {
    const key = `${bearer} ${dpop}`;
    let schemes = this.schemes.get(key);
    if (schemes === undefined) {
      schemes = Object.freeze({ bearer, dpop });
      this.schemes.set(key, schemes);
    }
    return schemes;
  }
}

function settingKey(setting: SenderConstraintSetting): string {
  return `${setting.dpop ?? ''} ${setting.mtls ?? ''}`;
}

/**
 * Where the member in force on `route` for the tokens of `issuer` comes from: the route, else its service
 * (the top level for the implicit service, or inherited by an explicit one), else the issuer, else the
 * default, `off`. For `authz explain`.
 */
export function constraintSource(
  member: ConstraintMember,
  route: CompiledRoute,
  service: CompiledService,
  issuer: IssuerPolicy | undefined,
): ConstraintSource {
  if (route.senderConstraint[member] !== undefined) return 'route';
  if (service.senderConstraint[member] !== undefined) return 'service';
  if (issuer?.senderConstraint[member] !== undefined) return 'issuer';
  return 'default';
}

/** Whether a constraint refuses tokens with no binding (some member is `required`). */
export function requiresBinding(constraint: SenderConstraintSetting): boolean {
  return constraint.dpop === 'required' || constraint.mtls === 'required';
}
