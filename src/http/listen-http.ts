import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A bound HTTP server: the port it got, and how to stop it. */
export interface ListeningHttp {
  readonly port: number;
  /** Stops accepting, drops idle keep-alive connections, and resolves when the server is closed. */
  close(): Promise<void>;
}

/**
 * Binds `server` to `host:port` (0 picks a free port). A bind error (port in use, no such address) rejects
 * instead of being thrown later as an unhandled 'error' event.
 */
export async function listenHttp(server: Server, host: string, port: number): Promise<ListeningHttp> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
