import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { JWK } from 'jose';
import { stringify } from 'yaml';
import { demoPolicyWith } from '../test/kit/demo-policy.js';
import { envoyConfigFor, startEnvoy } from '../test/kit/envoy.js';
import { freePorts } from '../test/kit/free-port.js';
import { planCpus, startCliAndWait, type KitProcess } from '../test/kit/process.js';
import { FAULT_AUDIENCE, FAULT_ISSUER } from './fault-tokens.js';
import type { TrafficRequest } from './traffic.js';
import { startKeyServer, type KeyServer } from '../test/kit/key-server.js';

/** The issuer settings a scenario chooses; everything else is the demo's. */
export interface IssuerSettings {
  readonly cacheTtlSeconds: number;
  readonly refreshCooldownSeconds: number;
  /** Default `[RS256]`. */
  readonly algorithms?: readonly string[];
}

/** Where a scenario's policy is to point: what {@link startFaultStack} passes its `policy` function. */
export interface StackEndpoints {
  /** The suite's key set endpoint. */
  readonly jwksUri: string;
  /**
   * Envoy's listener, `http://127.0.0.1:PORT`: the policy's `public_origin`, as a DPoP proof's `htu` must
   * name the origin the client really called (RFC 9449 section 4.3), not the demo's port 8000.
   */
  readonly publicOrigin: string;
}

/**
 * The repository's demo policy.yaml, its routes and sender constraints untouched (DPoP required on
 * `POST /transfer`), trusting the suite's issuer alone, whose keys are at `jwksUri`, with `public_origin`
 * the stack's Envoy.
 */
export async function faultPolicy(
  { jwksUri, publicOrigin }: StackEndpoints,
  issuer: IssuerSettings,
): Promise<Record<string, unknown>> {
  return demoPolicyWith({
    public_origin: publicOrigin,
    issuers: [
      {
        issuer: FAULT_ISSUER,
        audiences: [FAULT_AUDIENCE],
        jwks_uri: jwksUri,
        algorithms: [...(issuer.algorithms ?? ['RS256'])],
        require_typ: 'at+jwt',
        jwks_cache_ttl: `${issuer.cacheTtlSeconds}s`,
        jwks_refresh_cooldown: `${issuer.refreshCooldownSeconds}s`,
      },
    ],
  });
}

/** Envoy, `authz serve`, `authz bank` and a JWKS endpoint with faults on demand, on free ports. */
export interface FaultStack {
  /** Envoy's listener, `http://127.0.0.1:PORT`: where the traffic goes. */
  readonly baseUrl: string;
  /** The bank, straight (it trusts `x-auth-subject`: only the suite reads balances this way). */
  readonly bankUrl: string;
  /** authz's gRPC port. */
  readonly authzPort: number;
  readonly policyFile: string;
  readonly jwks: KeyServer;
  /** The authz process running now (a new one after {@link restartAuthz}). */
  authz(): KitProcess;
  /** `kill -9` of authz; resolves once it is gone. */
  killAuthz(): Promise<void>;
  /** Starts authz again, as before, and resolves once it logs `started`. */
  restartAuthz(): Promise<void>;
  /** Replaces the policy file at once (write aside, then rename), as editors and ConfigMaps do. */
  writePolicy(text: string): Promise<void>;
  /** The balance of `account` in the bank, in currency units. */
  balanceOf(account: string): Promise<number>;
  /** Stops everything and removes the temporary folder; safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts the stack: the JWKS endpoint serving `keys`, the policy `policy({jwksUri, publicOrigin})` written
 * to a fresh folder, the bank and authz (the CLI built in `target`, `npm run build`), then Envoy (this
 * checkout's envoy/envoy.yaml with its ports changed, as the e2e suites run it). Resolves when Envoy is live
 * and authz has logged `started`.
 */
export async function startFaultStack(options: {
  target: string;
  keys: readonly JWK[];
  policy: (endpoints: StackEndpoints) => Promise<Record<string, unknown>>;
}): Promise<FaultStack> {
  const entry = path.join(options.target, 'dist', 'cli', 'main.js');
  // The servers on the server core, as the bench does it: the traffic generator and the JWKS server (this
  // process) do not take turns with Envoy, authz and the bank.
  const cpu = planCpus()?.server;
  const dir = await mkdtemp(path.join(tmpdir(), 'authz-faults-'));
  const jwks = await startKeyServer(options.keys);
  const [listen, admin, authzPort, bankPort] = (await freePorts(4)) as [number, number, number, number];
  const baseUrl = `http://127.0.0.1:${listen}`;
  const policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(await options.policy({ jwksUri: jwks.url, publicOrigin: baseUrl })));

  const servers: Array<{ stop(): Promise<unknown> }> = [];
  const startCli = async (name: string, args: readonly string[]): Promise<KitProcess> => {
    const { process: server } = await startCliAndWait(args, {
      entry,
      name,
      keepLogLines: 0, // a decision line per request: parsed only while a scenario listens
      ...(cpu === undefined ? {} : { cpu }),
    });
    servers.push(server);
    return server;
  };
  const authzArgs = ['serve', '--policy', policyFile, '--listen', `127.0.0.1:${authzPort}`];

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(servers.map((server) => server.stop()));
      await jwks.close();
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    let authz: KitProcess;
    [authz] = await Promise.all([
      startCli('authz serve', authzArgs),
      startCli('authz bank', ['bank', '--listen', `127.0.0.1:${bankPort}`]),
    ]);
    const envoy = await startEnvoy({
      config: { text: envoyConfigFor({ listen, admin, authz: authzPort, bank: bankPort }) },
      admin,
      ...(cpu === undefined ? {} : { cpu }),
    });
    servers.push(envoy);

    const bankUrl = `http://127.0.0.1:${bankPort}`;
    return {
      baseUrl,
      bankUrl,
      authzPort,
      policyFile,
      jwks,
      authz: () => authz,
      killAuthz: async () => {
        authz.signal('SIGKILL');
        await authz.finished;
      },
      restartAuthz: async () => {
        authz = await startCli('authz serve', authzArgs);
      },
      writePolicy: async (text) => {
        const aside = `${policyFile}.${process.pid}.tmp`;
        await writeFile(aside, text);
        await rename(aside, policyFile);
      },
      balanceOf: async (account) => {
        const response = await fetch(`${bankUrl}/balance`, { headers: { 'x-auth-subject': account } });
        const body = (await response.json()) as { balance?: unknown };
        if (response.status !== 200 || typeof body.balance !== 'number') {
          throw new Error(`bank: GET /balance for ${account} answered ${response.status}`);
        }
        return body.balance;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Sends a request through Envoy until one is answered 200: `GET /balance` with `authorization` (authz has
 * the keys), or each time the request `next` makes (a fresh DPoP proof each: authz reaches its store).
 * @throws Error when it is not within `timeoutMs`
 */
export async function waitForAllow(
  stack: Pick<FaultStack, 'baseUrl'>,
  request: string | (() => Promise<TrafficRequest>),
  timeoutMs = 15_000,
): Promise<void> {
  const next =
    typeof request === 'string'
      ? () => Promise.resolve({ path: '/balance', headers: { authorization: request } })
      : request;
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const { path, headers } = await next();
    try {
      const response = await fetch(`${stack.baseUrl}${path}`, { headers: { ...headers } });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await delay(100);
  }
  throw new Error(`a valid request was not allowed within ${timeoutMs} ms (last: ${last})`);
}
