import { readdir, readFile, readlink } from 'node:fs/promises';

/*
 * Which process holds which TCP connection, read from Linux's /proc: how a test sees that the connections
 * to `authz serve --workers N` were handed to different workers (their log lines do not say which worker
 * decided: the decision line is a fixed interface).
 */

const ESTABLISHED = '01'; // the `st` column of /proc/net/tcp

/** The socket inodes of established connections whose local port is `port` (both IP versions). */
async function establishedInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
      const fields = line.trim().split(/\s+/);
      const [local, state, inode] = [fields[1], fields[3], fields[9]];
      if (local === undefined || inode === undefined) continue;
      if (state === ESTABLISHED && parseInt(local.split(':')[1] ?? '', 16) === port) inodes.add(inode);
    }
  }
  return inodes;
}

/** How many established connections on local port `port` each of `pids` holds (0 for one that has none). */
export async function connectionsByProcess(
  pids: readonly number[],
  port: number,
): Promise<Map<number, number>> {
  const inodes = await establishedInodes(port);
  const counts = new Map<number, number>();
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    let count = 0;
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) count += 1;
    }
    counts.set(pid, count);
  }
  return counts;
}
