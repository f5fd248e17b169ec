/**
 * The host a request is for, as services match it: lower case (host names are case-insensitive, RFC 9110
 * section 4.2.3), without the port (RFC 9110 section 7.2: `Host = uri-host [ ":" port ]`) and without one
 * trailing dot (an absolute name, RFC 1034 section 3.1, names the same host). Undefined for a value that is
 * not a host name or an IP literal, which then no service with hosts claims. Pure.
 */
export function normalisedRequestHost(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > MAX_HOST_LENGTH) return undefined;
  let host = value.toLowerCase();
  if (host.startsWith('[')) {
    // An IPv6 literal (RFC 3986 section 3.2.2), with an optional port after it.
    const end = host.indexOf(']');
    if (end === -1 || !/^(?::\d{1,5})?$/.test(host.slice(end + 1))) return undefined;
    host = host.slice(0, end + 1);
    return /^\[[0-9a-f:.]+\]$/.test(host) ? host : undefined;
  }
  const colon = host.indexOf(':');
  if (colon !== -1) {
    if (!/^\d{1,5}$/.test(host.slice(colon + 1))) return undefined;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.length <= MAX_NAME_LENGTH && HOST_NAME.test(host) ? host : undefined;
}

const MAX_HOST_LENGTH = 260; // a 253-character name, a dot and a port
const MAX_NAME_LENGTH = 253; // RFC 1035 section 2.3.4, in its text form without the trailing dot
/** Dot-separated labels of letters, digits and hyphens (RFC 1123 section 2.1; IPv4 literals fit too). */
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
