import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import type { DevTlsFiles } from '../../src/demo/dev-tls/dev-certificates.js';
import { freePort } from './free-port.js';
import { installedBinary } from './installed-binary.js';
import { startProcess, waitUntilReady, type KitProcess } from './process.js';

/*
 * Real redis-server processes for the tests of the shared DPoP replay store: the integration and e2e
 * suites, the fault suite and the bench start one here, then kill, pause, resume or restart it to see what
 * the sidecar does. Every server runs through the kit's process runner, so killAllProcesses (and this
 * process's exit) ends it too.
 */

/**
 * Locates redis-server: `$REDIS_SERVER_BIN` if set, else `.tools/redis/bin/redis-server` as installed by
 * `npm run redis:install` (scripts/install-redis.sh).
 *
 * Throws rather than returning something a test could skip on: a suite that skips when Redis is missing
 * would report green while proving nothing about the replay store.
 *
 * @returns the absolute path of an executable redis-server (Debian's, behind the install script's wrapper)
 * @throws Error when it is missing or not executable, naming the command that installs it
 */
export function redisServerBinary(): string {
  return installedBinary({
    name: 'Redis',
    envVar: 'REDIS_SERVER_BIN',
    installedAt: '.tools/redis/bin/redis-server',
    npmScript: 'redis:install',
    script: 'scripts/install-redis.sh',
  });
}

/** A server's TLS from a development certificate set (its server pair, and the CA that signed it). */
export function devTlsFor(files: DevTlsFiles): NonNullable<RedisServerOptions['tls']> {
  return { certFile: files.server.cert, keyFile: files.server.key, caFile: files.ca.cert };
}

/** How to start a server: {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The port (default: a free one); a restart keeps it. */
  readonly port?: number;
  /** `requirepass`: every client must AUTH with it (the default user's password). */
  readonly password?: string;
  /**
   * Serve TLS only, on `port` (`--tls-port`, plain `--port 0`). Clients are not asked for a certificate.
   * `caFile` is the CA the server's certificate chains to: the kit's own client ({@link RedisServer.command})
   * trusts it, and without it that client does not check the server's certificate.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile?: string };
  /** Pin to this core (see {@link startProcess}). */
  readonly cpu?: number;
  /** How long it may take to answer PING after a start or restart (default 20 s). */
  readonly readyTimeoutMs?: number;
}

/** A running redis-server, or one that was killed or stopped and may be restarted. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`, or `rediss://` with TLS; never the password (see {@link urlWithPassword}). */
  readonly url: string;
  /** {@link url} with the password in it (`redis://:PASSWORD@127.0.0.1:PORT`); the url itself without one. */
  urlWithPassword(): string;
  /** The pid of the current process; undefined once it has ended (after kill or stop, before restart). */
  readonly pid: number | undefined;
  /** The current process, for its output, RSS or exit. */
  readonly process: KitProcess;
  /** SIGKILL and wait for the exit: a crash, nothing flushed, every connection reset. */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port with the same options, a process with an empty data set (nothing is
   * persisted), and waits until it answers PING. A server still running is killed first.
   */
  restart(): Promise<void>;
  /** SIGSTOP: the kernel still accepts connections, but nothing is read or answered until {@link resume}. */
  pause(): void;
  /** SIGCONT: it answers again, including what was sent while it was paused. */
  resume(): void;
  /**
   * Sends one command on a fresh connection (authenticated when a password is set) and returns the reply.
   * @throws the server's error reply (ioredis ReplyError: `NOAUTH ...`, `WRONGTYPE ...`), or Error when the
   *   connection fails or no reply comes within 5 s
   */
  command(...args: string[]): Promise<unknown>;
  /** {@link command} with its own deadline: for a paused or slow server, rejects after `timeoutMs`. */
  commandWithin(timeoutMs: number, ...args: string[]): Promise<unknown>;
  /** Graceful stop: SIGTERM (which saves nothing here), SIGKILL after 5 s; waits for the exit. Safe to call twice. */
  stop(): Promise<void>;
}

const COMMAND_TIMEOUT_MS = 5_000;
const PING_TIMEOUT_MS = 1_000; // one probe of the readiness wait; the wait itself is readyTimeoutMs
const READY_TIMEOUT_MS = 20_000;

/** Where and how the kit's own client connects. */
interface Target {
  readonly port: number;
  readonly password: string | undefined;
  readonly tls: RedisOptions['tls'];
}

/**
 * One command on a client of its own, closed afterwards whatever happened: a kit helper must not leave a
 * socket, a reconnect timer or a queued command behind, least of all against a server a test paused.
 */
async function sendCommand(target: Target, args: readonly string[], timeoutMs: number): Promise<unknown> {
  const [name, ...rest] = args;
  if (name === undefined) throw new Error('redis command: no command given');
  const client = new Redis({
    host: '127.0.0.1',
    port: target.port,
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls === undefined ? {} : { tls: target.tls }),
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: false, // its INFO would be a second command the test did not send
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
  });
  // connect() rejects with only "Connection is closed." when the connection fails (refused, TLS handshake,
  // AUTH): keep the error the client emitted, the reason, to throw instead. Unheard, ioredis would log it.
  let emitted: Error | undefined;
  client.on('error', (error: Error) => (emitted ??= error));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`redis :${target.port}: no reply to ${name} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  const exchange = (async () => {
    try {
      await client.connect();
    } catch (error) {
      throw emitted ?? error;
    }
    return client.call(name, ...rest);
  })();
  exchange.catch(() => undefined); // after the deadline won, its rejection is expected, not unhandled
  try {
    return await Promise.race([exchange, deadline]);
  } finally {
    clearTimeout(timer);
    // disconnect, not quit: QUIT waits for a reply a paused server never sends.
    client.disconnect();
  }
}

/**
 * Starts redis-server on 127.0.0.1 with everything on the command line (no config file): no persistence
 * (`--save ''`, `--appendonly no`), 64 MB and `noeviction` (a full store answers errors instead of dropping
 * keys), `DEBUG` allowed from local clients (`DEBUG SLEEP` for a slow server), and a temporary `--dir`
 * removed once the process ends. Waits until it answers PING.
 *
 * @throws Error with the server's output when it exits first or does not answer within readyTimeoutMs
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = redisServerBinary();
  const port = options.port ?? (await freePort());
  const { password, tls } = options;
  const target: Target = {
    port,
    password,
    tls:
      tls === undefined
        ? undefined
        : tls.caFile === undefined
          ? { rejectUnauthorized: false }
          : { ca: readFileSync(tls.caFile) },
  };
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          ...['--port', '0', '--tls-port', String(port)],
          ...['--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile],
          ...(tls.caFile === undefined ? [] : ['--tls-ca-cert-file', tls.caFile]),
          ...['--tls-auth-clients', 'no'],
        ];
  const fixedArgs = [
    ...listen,
    ...['--bind', '127.0.0.1', '--protected-mode', 'no'],
    ...['--save', '', '--appendonly', 'no'],
    ...['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction'],
    ...['--enable-debug-command', 'local'],
    ...(password === undefined ? [] : ['--requirepass', password]),
  ];
  const host = `127.0.0.1:${port}`;
  const scheme = tls === undefined ? 'redis' : 'rediss';
  const url = `${scheme}://${host}`;
  const name = `redis-server ${host}`;

  let current: KitProcess | undefined;
  const launch = async (): Promise<void> => {
    const dir = await mkdtemp(path.join(tmpdir(), 'redis-kit-'));
    const args = [...fixedArgs, '--dir', dir];
    const started = startProcess({
      name,
      command: binary,
      args,
      ...(options.cpu === undefined ? {} : { cpu: options.cpu }),
    });
    current = started;
    void started.finished.then(() => rm(dir, { recursive: true, force: true }));
    try {
      await waitUntilReady(
        started,
        'PONG',
        async () => {
          try {
            return (await sendCommand(target, ['PING'], PING_TIMEOUT_MS)) === 'PONG';
          } catch {
            return false;
          }
        },
        options.readyTimeoutMs ?? READY_TIMEOUT_MS,
      );
    } catch (error) {
      started.signal('SIGKILL');
      await started.finished;
      throw new Error(`${(error as Error).message}\nCommand: ${binary} ${args.join(' ')}`);
    }
  };
  const running = (): KitProcess | undefined =>
    current !== undefined && current.exitReason() === undefined ? current : undefined;
  const kill = async (): Promise<void> => {
    const child = running();
    if (child === undefined) return;
    child.signal('SIGKILL'); // works on a paused process too
    await child.finished;
  };

  await launch();
  return {
    port,
    url,
    urlWithPassword: () =>
      password === undefined ? url : `${scheme}://:${encodeURIComponent(password)}@${host}`,
    get pid() {
      return running()?.pid;
    },
    get process() {
      return current!;
    },
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    pause: () => running()?.signal('SIGSTOP'),
    resume: () => running()?.signal('SIGCONT'),
    command: (...args) => sendCommand(target, args, COMMAND_TIMEOUT_MS),
    commandWithin: (timeoutMs, ...args) => sendCommand(target, args, timeoutMs),
    stop: async () => {
      const child = running();
      if (child === undefined) return;
      child.signal('SIGCONT'); // a paused server would not see the SIGTERM until resumed
      await child.stop();
    },
  };
}
