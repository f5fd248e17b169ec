import { createServer, type Server } from 'node:net';

/**
 * Finds a TCP port on 127.0.0.1 that is free right now.
 *
 * @returns a port number the caller should bind soon (another process could take it in between)
 */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * Finds several distinct free TCP ports on 127.0.0.1.
 *
 * All listeners are held open until every port is known: calling {@link freePort} repeatedly could hand out
 * the same port twice, because the kernel may reuse a port as soon as the probe socket closes.
 *
 * @param count - how many ports
 * @returns `count` distinct port numbers
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
      const address = server.address();
      if (address === null || typeof address === 'string')
        throw new Error('listening socket has no TCP port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Whether something could bind `port` on 127.0.0.1 right now (so nothing else is listening there). */
export async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  const bound = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (bound) await new Promise<void>((resolve) => server.close(() => resolve()));
  return bound;
}
