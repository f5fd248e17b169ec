import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The header a test sets on each request to tie it to what the upstream received for it. */
export const REQUEST_ID_HEADER = 'x-e2e-request';

/** One request as the recording upstream received it. */
export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  /** Header lines in arrival order: [name, value], name as sent by Envoy. */
  readonly lines: ReadonlyArray<readonly [string, string]>;
}

/** An HTTP upstream on 127.0.0.1 that records every header line it receives, spelling and repeats kept. */
export interface RecordingUpstream {
  readonly port: number;
  /** What arrived for the request whose {@link REQUEST_ID_HEADER} was `id`; undefined when nothing did. */
  received(id: string): ReceivedRequest | undefined;
  close(): Promise<void>;
}

/** Starts a {@link RecordingUpstream} on a free port that answers every request with `body`. */
export async function startRecordingUpstream(body: string): Promise<RecordingUpstream> {
  const received = new Map<string, ReceivedRequest>();
  const server = createServer((req, res) => {
    const lines: Array<[string, string]> = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
      lines.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    const id = req.headers[REQUEST_ID_HEADER];
    if (typeof id === 'string') received.set(id, { method: req.method ?? '', url: req.url ?? '', lines });
    req.resume();
    req.on('end', () => res.end(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: (id) => received.get(id),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
