import type { ValidateFunction } from 'ajv/dist/2020.js';
import { compilePolicySchema } from './compile-policy.js';
import policySchema from './policy.schema.json' with { type: 'json' };

/**
 * The schemas of a policy directory's files (also written out for editors as
 * `policy-root.schema.json` and `policy-service-file.schema.json`, which a test keeps equal to these) (docs/policy.md, "A policy directory"), derived from the
 * single-file schema so that the two formats never drift: the root holds every top-level key but `routes`
 * and `services`, plus what it says of the service files; a service file holds `owner` and `services`.
 */

/** Names a root file may have; exactly one must be in the directory. */
export const ROOT_FILE_NAMES: readonly string[] = ['_gateway.yaml', '_gateway.yml'];

/** The most service-file patterns a root lists, and the most policy files a directory holds. */
export const MAX_POLICY_FILES = 256;

const FILE_NAME = '^(?!\\.)(?!.*\\.test\\.ya?ml$)[A-Za-z0-9._*-]{1,200}\\.ya?ml$';

const { services } = policySchema.properties;
/** The single-file schema's top-level keys but `routes` and `services`: the root's own. */
const topLevel = Object.fromEntries(
  Object.entries(policySchema.properties).filter(([key]) => key !== 'routes' && key !== 'services'),
);

/** The keys a root holds besides a policy's own: what it says of the service files. */
export const ROOT_FILE_KEYS: readonly string[] = [
  'owner',
  'service_files',
  'overlapping_wildcards',
  'service_rules',
];

export const ROOT_FILE_SCHEMA = {
  ...policySchema,
  $id: 'urn:envoy-authz-sidecar:policy-root:v1',
  title: 'authz policy directory: root file (_gateway.yaml)',
  required: [...policySchema.required, 'service_files'],
  properties: {
    ...topLevel,
    owner: {
      description: 'The team that owns this root file (the issuers and defaults), for `authz owners`.',
      type: 'string',
      minLength: 1,
      maxLength: 100,
      pattern: '^[^\\x00-\\x1F\\x7F]+$',
    },
    service_files: {
      description:
        'The service files this root admits: file names in the directory (bank.yaml), or patterns with * (team-*.yaml). A YAML file no entry admits is refused.',
      type: 'array',
      minItems: 1,
      maxItems: MAX_POLICY_FILES,
      uniqueItems: true,
      items: { type: 'string', pattern: FILE_NAME },
    },
    overlapping_wildcards: {
      description:
        'Wildcard hosts (*.example.com) a service file may claim over exact hosts under them that other files hold. Without an entry here, such an overlap is a conflict and the later file is refused.',
      type: 'array',
      maxItems: 1024,
      uniqueItems: true,
      items: { type: 'string', pattern: '^\\*\\.[A-Za-z0-9.-]{1,253}$' },
    },
    service_rules: {
      description: 'What service files may do; a service file that breaks a rule is refused.',
      type: 'object',
      additionalProperties: false,
      properties: {
        public_routes: { description: 'Routes with public: true.', enum: ['allowed', 'refused'] },
        report_only: {
          description: 'mode: report-only on a service or route.',
          enum: ['allowed', 'refused'],
        },
        accept_risks: { description: "Routes' accept_risks entries.", enum: ['allowed', 'refused'] },
      },
    },
  },
};

export const SERVICE_FILE_SCHEMA = {
  $schema: policySchema.$schema,
  $id: 'urn:envoy-authz-sidecar:policy-service-file:v1',
  title: 'authz policy directory: service file',
  description:
    "One team's services in a policy directory: the team (owner) and its services; issuers and defaults are the root file's (_gateway.yaml).",
  type: 'object',
  additionalProperties: false,
  required: ['owner', 'services'],
  properties: {
    version: policySchema.properties.version,
    owner: {
      description:
        'The team that owns the file: free text (team-payments, @bank/payments), for logs, metrics and `authz owners`.',
      type: 'string',
      minLength: 1,
      maxLength: 100,
      pattern: '^[^\\x00-\\x1F\\x7F]+$',
    },
    services,
  },
  $defs: policySchema.$defs,
};

// Compiled once per process: the schemas are static.
export const validateRootFile: ValidateFunction = compilePolicySchema(ROOT_FILE_SCHEMA);
export const validateServiceFile: ValidateFunction = compilePolicySchema(SERVICE_FILE_SCHEMA);

/** The top-level keys only a root file may hold: a service file naming one is told where it belongs. */
export const ROOT_ONLY_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(topLevel).filter((key) => key !== 'version'),
  'routes',
  'service_files',
  'overlapping_wildcards',
  'service_rules',
]);
