import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ensureDevCertificates } from '../../src/demo/dev-tls/dev-certificates.js';
import {
  devTlsFor,
  startRedisServer,
  type RedisServer,
  type RedisServerOptions,
} from '../kit/redis-server.js';
import { cleanupAfterEach, suiteTempDir } from '../kit/test-hooks.js';

/*
 * The test kit's Redis servers (test/kit/redis-server.ts), real redis-server processes from
 * `npm run redis:install`: each thing a fault test does to one (pause, kill, restart, stop) once, and the
 * password and TLS modes the replay store's client must handle.
 */

const temp = suiteTempDir('authz-kit-redis-');
const defer = cleanupAfterEach();

async function start(options?: RedisServerOptions): Promise<RedisServer> {
  const server = await startRedisServer(options);
  defer(() => server.stop());
  return server;
}

/**
 * Writes `request` on a plain TCP connection and resolves with what came back until the first line ended or
 * the server closed the connection; `error CODE` when connecting failed. Unauthenticated, unencrypted: what
 * ioredis would hide.
 */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let received = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    const done = (result: string) => {
      socket.destroy();
      resolve(result);
    };
    socket.setEncoding('utf8');
    socket.setTimeout(5_000, () => done(`timeout after ${JSON.stringify(received)}`));
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\r\n')) done(received);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => done(received || `error ${error.code}`));
    socket.on('close', () => done(received));
  });
}

/** Whether a TCP connection to `port` is accepted: `connected`, or the error code. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** ioredis as the product will use it: from a URL, no retries, closed by the caller. */
async function viaUrl(url: string, command: string[], options: RedisOptions = {}): Promise<unknown> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...options,
  });
  // connect() says only "Connection is closed.": the error the client emitted is the reason.
  let emitted: Error | undefined;
  client.on('error', (error: Error) => (emitted ??= error));
  try {
    await client.connect().catch((error: unknown) => {
      throw emitted ?? error;
    });
    const [name, ...args] = command;
    return await client.call(name!, ...args);
  } finally {
    client.disconnect();
  }
}

describe('startRedisServer (test/kit/redis-server.ts)', () => {
  it('answers commands on its url, with DEBUG allowed and no eviction', async () => {
    const server = await start();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.urlWithPassword()).toBe(server.url);
    expect(server.pid).toBe(server.process.pid);
    expect(await server.command('SET', 'jti:1', 'seen')).toBe('OK');
    expect(await server.command('GET', 'jti:1')).toBe('seen');
    expect(await viaUrl(server.url, ['GET', 'jti:1'])).toBe('seen');
    expect(await server.command('DEBUG', 'SLEEP', '0')).toBe('OK');
    expect(await server.command('CONFIG', 'GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'noeviction',
    ]);
    expect(await server.command('CONFIG', 'GET', 'save')).toEqual(['save', '']);
  });

  it('paused, accepts connections but answers nothing; resumed, answers again', async () => {
    const server = await start();
    server.pause();
    expect(await connectOutcome(server.port)).toBe('connected');
    await expect(server.commandWithin(300, 'PING')).rejects.toThrow(
      `redis :${server.port}: no reply to PING within 300 ms`,
    );
    server.resume();
    expect(await server.command('PING')).toBe('PONG');
  });

  it('killed, refuses connections; restarted, answers on the same port with an empty data set', async () => {
    const server = await start();
    const firstPid = server.pid;
    expect(await server.command('SET', 'jti:1', 'seen')).toBe('OK');

    await server.kill();
    expect(server.process.exitReason()).toBe('SIGKILL');
    expect(server.pid).toBeUndefined();
    expect(await connectOutcome(server.port)).toBe('ECONNREFUSED');
    await expect(server.command('PING')).rejects.toThrow(/ECONNREFUSED/);

    await server.restart();
    expect(server.pid).toBeTypeOf('number');
    expect(server.pid).not.toBe(firstPid);
    expect(await server.command('PING')).toBe('PONG');
    expect(await server.command('GET', 'jti:1')).toBeNull();
  });

  it('killed while paused, ends; stopped, exits cleanly and can be restarted', async () => {
    const server = await start();
    server.pause();
    await server.kill();
    expect(server.process.exitReason()).toBe('SIGKILL');

    await server.restart();
    server.pause(); // stop resumes it first, or the SIGTERM would wait for SIGCONT
    await server.stop();
    expect(server.process.exitReason()).toBe('exit 0');
    expect(await connectOutcome(server.port)).toBe('ECONNREFUSED');

    await server.restart();
    expect(await server.command('PING')).toBe('PONG');
  });

  it('with a password, refuses an unauthenticated command (NOAUTH); the kit and urlWithPassword authenticate', async () => {
    const server = await start({ password: 'replay-store secret' });
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.urlWithPassword()).toBe(`redis://:replay-store%20secret@127.0.0.1:${server.port}`);
    expect(await rawExchange(server.port, '*2\r\n$3\r\nGET\r\n$5\r\njti:1\r\n')).toMatch(/^-NOAUTH /);
    await expect(viaUrl(server.url, ['GET', 'jti:1'])).rejects.toThrow(/^NOAUTH /);
    expect(await server.command('SET', 'jti:1', 'seen')).toBe('OK');
    expect(await viaUrl(server.urlWithPassword(), ['GET', 'jti:1'])).toBe('seen');
  });

  it('with TLS, answers a TLS client that trusts its CA, and nothing in plain text', async () => {
    const certificates = await ensureDevCertificates(temp.dir);
    const server = await start({
      tls: devTlsFor(certificates),
    });
    expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
    expect(await server.command('SET', 'jti:1', 'seen')).toBe('OK');
    const ca = readFileSync(certificates.ca.cert);
    expect(await viaUrl(server.url, ['GET', 'jti:1'], { tls: { ca } })).toBe('seen');
    // A client that trusts another CA (the system's) rejects the development certificate.
    await expect(viaUrl(server.url, ['PING'])).rejects.toThrow(/self-signed|unable to (get|verify)/i);
    // Plain text fails the handshake: the connection ends (reset, with the request unread) and nothing is answered.
    expect(await rawExchange(server.port, '*1\r\n$4\r\nPING\r\n')).toMatch(/^(error ECONNRESET)?$/);
  });
});
