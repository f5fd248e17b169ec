import { UsageError } from './usage-error.js';

/** A `host:port` to listen on; IPv6 hosts in brackets (`[::1]:9001`). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
  /** The canonical text, usable as a gRPC bind address. */
  readonly text: string;
}

/**
 * Parses `HOST:PORT` (port 0 to 65535; 0 picks a free port).
 * @param source the flag or variable it came from, named in the error.
 * @throws UsageError
 */
export function parseListenAddress(value: string, source: string): ListenAddress {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value.trim());
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || match[1] === undefined || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`${source}: "${value}" is not HOST:PORT (e.g. 127.0.0.1:9001 or [::1]:9001)`);
  }
  const host = match[1].startsWith('[') ? match[1].slice(1, -1) : match[1];
  return Object.freeze({ host, port, text: `${match[1]}:${port}` });
}
