import type { EnforcementMode, ReloadGuard, SenderConstraintSetting } from './compiled-policy.js';

/** The policy as the schema guarantees it, before semantic checks. */
export interface PolicyDocument {
  version: 1;
  realm?: string;
  mode?: EnforcementMode;
  reload_guard?: ReloadGuard;
  max_token_bytes?: number;
  max_rsa_key_bits?: number;
  known_scopes?: string[];
  public_origin?: PublicOriginDocument;
  sender_constraint?: SenderConstraintSetting;
  dpop?: DpopDocument & {
    replay_cache_size?: number;
    replay_cache_per_key?: number;
    replay_cache_per_subject?: number;
    replay_store?: {
      type: 'memory' | 'redis';
      url?: string;
      url_file?: string;
      ca_file?: string;
      key_prefix?: string;
      timeout?: number | string;
      fallback?: 'none' | 'local';
    };
  };
  issuers: {
    issuer: string;
    audiences: string[];
    jwks_uri?: string;
    jwks_file?: string;
    discovery?: true;
    openid_configuration?: string;
    algorithms: string[];
    claims?: { scopes?: string[]; acr?: string; amr?: string; auth_time?: string };
    require_typ?: string;
    require_sub?: boolean;
    clock_tolerance?: number | string;
    jwks_cache_ttl?: number | string;
    jwks_refresh_cooldown?: number | string;
    jwks_max_stale?: number | string;
    jwks_fetch_wait?: number | string;
    max_token_lifetime?: number | string;
    token_cache?: { max_entries?: number; ttl?: number | string };
    sender_constraint?: SenderConstraintSetting;
  }[];
  routes?: RouteDocument[];
  services?: {
    name: string;
    hosts?: string[];
    realm?: string;
    mode?: EnforcementMode;
    issuers?: { issuer: string; audiences?: string[] }[];
    claim_headers?: Record<string, string>;
    public_origin?: PublicOriginDocument;
    sender_constraint?: SenderConstraintSetting;
    dpop?: DpopDocument;
    routes: RouteDocument[];
  }[];
}

/** A policy directory's root file (`_gateway.yaml`) as its schema guarantees it. */
export type RootDocument = Omit<PolicyDocument, 'routes' | 'services'> & {
  owner?: string;
  service_files: string[];
  overlapping_wildcards?: string[];
  service_rules?: {
    public_routes?: 'allowed' | 'refused';
    report_only?: 'allowed' | 'refused';
    accept_risks?: 'allowed' | 'refused';
  };
};

/** A policy directory's service file as its schema guarantees it. */
export interface ServiceFileDocument {
  version?: 1;
  owner: string;
  services: ServiceDocument[];
}

export type ServiceDocument = NonNullable<PolicyDocument['services']>[number];

export type PublicOriginDocument = string | string[];

export interface DpopDocument {
  algorithms?: string[];
  max_age?: number | string;
  clock_tolerance?: number | string;
  nonce?: 'off' | 'required';
  nonce_lifetime?: number | string;
}

export interface RouteDocument {
  methods?: string[];
  path: string;
  scopes?: string[];
  public?: boolean;
  mode?: EnforcementMode;
  authentication?: { acr_values?: string[]; amr?: string[]; max_age?: number | string };
  accept_risks?: { code: string; reason: string }[];
  sender_constraint?: SenderConstraintSetting;
}

export type PathSegment = string | number;
