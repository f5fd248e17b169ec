import { dirname } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { CompiledPolicy, IssuerPolicy } from './compiled-policy.js';
import { compileIssuer } from './compile-issuer.js';
import { compileReplayLimits, compileReplayStore } from './compile-dpop.js';
import { compileServices } from './compile-services.js';
import { checkDocumentShape } from './document-shape.js';
import { POLICY_DEFAULTS } from './policy-defaults.js';
import type { PathSegment, PolicyDocument } from './policy-document.js';
import { PolicyError, type PolicyProblem } from './policy-error.js';
import policySchema from './policy.schema.json' with { type: 'json' };
import { policyVersion } from './policy-version.js';
import { Locator, type DocumentLocator } from './problem-locator.js';
import { schemaProblems } from './schema-messages.js';
import { createServiceSelector } from './service-selector.js';
import { YamlLocations } from './yaml-locations.js';

/** Compiles a policy JSON schema (the policy's, or a policy directory's root and service files'). */
export function compilePolicySchema(schema: object): ValidateFunction {
  return new Ajv2020({
    allErrors: true,
    verbose: true, // keeps parentSchema on each error, to list the allowed keys
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  }).compile(schema);
}

// Compiled once per process: the schema is static.
const validateSchema = compilePolicySchema(policySchema);

/**
 * Parses, validates and compiles policy text. Pure: reads no files (a `jwks_file` is resolved against
 * `file`'s folder but not opened; see `loadPolicy`).
 *
 * @param text the YAML source.
 * @param file the file name used in error messages and to resolve relative paths.
 * @throws PolicyError with every problem found, each with line, column and document path.
 */
export function compilePolicy(text: string, file: string): CompiledPolicy {
  const { locator, data } = parsePolicyYaml(text, file);
  checkSchema(validateSchema, data, locator);
  return compilePolicyDocument(data as unknown as PolicyDocument, {
    locator,
    version: policyVersion(text),
    source: file,
    folder: dirname(file),
  });
}

/** A policy YAML text parsed: its data, and the locator of its paths. */
export interface ParsedPolicyYaml {
  readonly locator: Locator;
  readonly data: unknown;
}

/**
 * Parses one policy YAML file (a single policy, or a policy directory's root or service file): syntax,
 * the document's shape, bounded alias expansion. The schema is the caller's.
 *
 * @throws PolicyError `ERR_POLICY_SYNTAX` or `ERR_POLICY_INVALID`.
 */
export function parsePolicyYaml(text: string, file: string): ParsedPolicyYaml {
  const locations = new YamlLocations(text);
  const doc = locations.document;
  const locator = new Locator(file, locations);

  if (doc.errors.length > 0) {
    throw new PolicyError(
      'ERR_POLICY_SYNTAX',
      doc.errors.map((error) => locator.atOffset(error.pos[0], `YAML syntax: ${firstLine(error.message)}`)),
    );
  }
  checkDocumentShape(locations, file); // empty, not a mapping, merge keys: before the schema's terser words
  try {
    return { locator, data: doc.toJS({ maxAliasCount: 100 }) }; // bounds alias expansion ("billion laughs")
  } catch (error) {
    throw new PolicyError('ERR_POLICY_SYNTAX', [
      locator.atOffset(0, `YAML: ${firstLine((error as Error).message)}`),
    ]);
  }
}

/** @throws PolicyError `ERR_POLICY_INVALID` with one clear problem per place the schema refuses. */
export function checkSchema(validate: ValidateFunction, data: unknown, locator: Locator): void {
  if (!validate(data))
    throw new PolicyError('ERR_POLICY_INVALID', schemaProblems(validate.errors ?? [], locator));
}

/** Where a policy document came from, for `compilePolicyDocument`. */
export interface PolicyDocumentContext {
  /** Locates the document's paths: in one file, or in the files of a policy directory. */
  readonly locator: DocumentLocator;
  /** `CompiledPolicy.version`. */
  readonly version: string;
  /** `CompiledPolicy.source`: the file or directory. */
  readonly source: string;
  /** The folder relative `jwks_file` and `url_file` paths are resolved against. */
  readonly folder: string;
}

/**
 * Compiles a policy document the schema has accepted. Pure.
 *
 * @throws PolicyError `ERR_POLICY_INVALID` with every problem found.
 */
export function compilePolicyDocument(
  policy: PolicyDocument,
  context: PolicyDocumentContext,
): CompiledPolicy {
  const { locator, folder } = context;
  const problems: PolicyProblem[] = [];
  const report = (path: PathSegment[], message: string): void => {
    problems.push(locator.at(path, message));
  };

  const headerClaims = [
    ...new Set((policy.services ?? []).flatMap((service) => Object.keys(service.claim_headers ?? {}))),
  ].sort();
  const maxRsaKeyBits = policy.max_rsa_key_bits ?? POLICY_DEFAULTS.maxRsaKeyBits;
  const declared = new Map<string, IssuerPolicy>();
  policy.issuers.forEach((entry, i) => {
    const issuer = compileIssuer(entry, ['issuers', i], folder, headerClaims, maxRsaKeyBits, report);
    if (issuer === undefined) return;
    if (declared.has(issuer.issuer))
      report(['issuers', i, 'issuer'], `issuer "${issuer.issuer}" is listed twice`);
    declared.set(issuer.issuer, issuer);
  });

  const services = compileServices(policy, declared, locator, report);
  // jwtVerify checks a token's aud against every audience any service accepts from its issuer; each
  // service then checks its own (CompiledService.trust), per request.
  const issuers = new Map<string, IssuerPolicy>();
  for (const [iss, issuer] of declared) {
    const audiences = new Set(issuer.audiences);
    for (const service of services)
      for (const audience of service.trust.get(iss) ?? []) audiences.add(audience);
    issuers.set(
      iss,
      audiences.size === issuer.audiences.length
        ? issuer
        : Object.freeze({ ...issuer, audiences: Object.freeze([...audiences]) }),
    );
  }

  const dpopReplayLimits = compileReplayLimits(policy.dpop, report);
  const dpopReplayStore = compileReplayStore(policy.dpop, folder, report);
  if (problems.length > 0) throw new PolicyError('ERR_POLICY_INVALID', problems);
  return Object.freeze({
    version: context.version,
    source: context.source,
    maxTokenBytes: policy.max_token_bytes ?? POLICY_DEFAULTS.maxTokenBytes,
    issuers,
    services: Object.freeze(services),
    explicitServices: policy.services !== undefined,
    serviceSelector: createServiceSelector(services),
    knownScopes: policy.known_scopes === undefined ? undefined : Object.freeze([...policy.known_scopes]),
    reloadGuard: policy.reload_guard ?? 'error',
    dpopReplayLimits,
    dpopReplayStore,
    maxRsaKeyBits,
  });
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
