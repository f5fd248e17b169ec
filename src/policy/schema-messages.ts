import type { ErrorObject } from 'ajv/dist/2020.js';
import { isMillisecondsDuration } from './duration.js';
import type { PolicyProblem } from './policy-error.js';
import type { PathSegment } from './policy-document.js';
import type { Locator } from './problem-locator.js';

/** Turns schema errors into one clear problem per place, located in the file. */
export function schemaProblems(errors: readonly ErrorObject[], locator: Locator): PolicyProblem[] {
  const oneOfPaths = new Set(errors.filter((e) => e.keyword === 'oneOf').map((e) => e.instancePath));
  const seen = new Set<string>();
  const problems: PolicyProblem[] = [];
  for (const error of errors) {
    const path = pointerToPath(error.instancePath);
    // Errors inside the branches of a failed oneOf are noise; the oneOf error itself says what to do.
    if (oneOfPaths.has(error.instancePath) && error.schemaPath.includes('/oneOf/')) continue;
    let target = path;
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties': {
        const key = String(error.params['additionalProperty']);
        const allowed = Object.keys((error.parentSchema as { properties?: object }).properties ?? {});
        target = [...path, key];
        message =
          (key.startsWith('replay_cache_') || key === 'replay_store') && path.at(-1) === 'dpop'
            ? // One replay store per process, shared by every service: a per-service limit would mislead.
              `${key} is per process, for every service: set it in the top-level dpop`
            : `unknown key "${key}" (allowed: ${allowed.join(', ')})`;
        break;
      }
      case 'required':
        message = `missing required key "${String(error.params['missingProperty'])}"`;
        break;
      case 'oneOf':
        message = oneOfMessage(path, error.data);
        break;
      case 'const':
        message = `must be ${JSON.stringify(error.params['allowedValue'])}`;
        break;
      case 'enum':
        message = `must be one of: ${(error.params['allowedValues'] as unknown[]).join(', ')}`;
        break;
      case 'pattern':
        message = patternMessage(path);
        break;
      case 'uniqueItems':
        message = 'lists the same value twice';
        break;
      default:
        message = error.message ?? 'is not valid';
    }
    const key = `${target.join('.')}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(locator.at(target, message));
  }
  return problems;
}

function oneOfMessage(path: PathSegment[], value: unknown): string {
  if (path[0] === 'issuers' && path.length === 2)
    return 'give exactly one of "jwks_uri", "jwks_file", "discovery: true" or "openid_configuration"';
  if (path.at(-1) === 'public_origin')
    return 'must be an origin (https://bank.example) or a non-empty list of origins';
  if (path.at(-1) === 'jwks_fetch_wait')
    return 'must be a duration: milliseconds (800ms), whole seconds (1) or a number with a unit (1s)';
  // Only jwks_fetch_wait takes ms; say so rather than only that the form is wrong.
  if (isMillisecondsDuration(value))
    return 'takes whole seconds at the finest (30, 30s, 5m, 1h): "ms" is accepted by jwks_fetch_wait only';
  return 'must be a duration: whole seconds (30) or a number with a unit (30s, 5m, 1h)';
}

function patternMessage(path: PathSegment[]): string {
  // A service's routes, realm and claim headers sit under services[N]: judge them by what follows.
  const within = path[0] === 'services' && typeof path[1] === 'number' ? path.slice(2) : path;
  if (within[0] === 'routes' && within.includes('methods')) return 'is not an HTTP method name';
  if ((within[0] === 'routes' && within.includes('scopes')) || within[0] === 'known_scopes')
    return 'is not a scope token (RFC 6749 section 3.3: no spaces, quotes or backslashes)';
  if (within[0] === 'realm') return 'may hold printable ASCII only, without quotes or backslashes';
  if (path[0] === 'services' && within[0] === 'name') {
    return 'is not a service name (lower-case letters, digits and "-", at most 64)';
  }
  if (path[0] === 'dpop' && path[1] === 'replay_store' && path[2] === 'key_prefix') {
    return 'may hold at most 64 printable ASCII characters, without spaces';
  }
  if (path[0] === 'services' && within[0] === 'claim_headers') {
    return 'is not a header for a claim (lower case, starting with "x-": x-auth-email)';
  }
  return 'has an unexpected form';
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment));
}
