import { BlockList } from 'node:net';

// 127.0.0.0/8 and ::1; BlockList also matches IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) against IPv4 rules.
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a peer address (`socket.remoteAddress`) is on this machine. The development helpers (the
 * simulated authenticator, key rotation) answer only such peers, even when the provider listens on every
 * interface. Development only.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined || address === '') return false;
  try {
    return LOOPBACK.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
  } catch {
    return false; // not an IP address at all
  }
}
