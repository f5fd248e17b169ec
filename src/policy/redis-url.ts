/** The Redis databases a URL's path may name (`redis://host/3`): Redis's default `databases 16`. */
const MAX_DATABASE = 15;

/**
 * Why a Redis URL is unacceptable, or undefined if it is fine: `redis://` or `rediss://` (TLS), a host, an
 * optional port and database number, nothing else (no query or fragment a client might read as options).
 * Credentials are accepted only where the URL comes from a file (`url_file`, a mounted Secret): a policy
 * file is read, diffed and logged by people who should not see a password.
 */
export function redisUrlProblem(text: string, credentials: 'allowed' | 'refused'): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not an absolute URL';
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return 'must be a redis:// or rediss:// URL';
  if (url.hostname === '') return 'must name a host';
  if (credentials === 'refused' && (url.username !== '' || url.password !== '')) {
    return 'must not carry credentials: put the whole URL in a file and name it in url_file';
  }
  if (url.search !== '' || url.hash !== '') return 'must not have a query or fragment';
  const database = url.pathname.replace(/^\//, '');
  if (database !== '' && !(/^\d{1,2}$/.test(database) && Number(database) <= MAX_DATABASE)) {
    return `may name a database number from 0 to ${MAX_DATABASE} as its path, nothing else`;
  }
  return undefined;
}

/** Where a Redis URL points, for log lines: scheme, host and port, never credentials. */
export function redisAddress(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}`;
  } catch {
    return 'unparsable URL';
  }
}
