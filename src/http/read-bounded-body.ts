import type { IncomingMessage } from 'node:http';

/**
 * Reads a request body as UTF-8 if it is at most `maxBytes` long; resolves undefined when it is longer
 * (declared or actual). A body that is too long is drained unread rather than cut off, so the caller can
 * still answer (413) on the same connection; the server's request timeout bounds how long that may take.
 */
export function readBoundedBody(request: IncomingMessage, maxBytes: number): Promise<string | undefined> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        request.removeAllListeners('data');
        request.resume();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
