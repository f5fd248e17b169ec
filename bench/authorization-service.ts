import * as path from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  makeGenericClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { repoRoot } from '../test/kit/process.js';

/** Our copies of Envoy's protos, loaded by ghz (`--import-paths`) and by the bench's own gRPC peers. */
export const PROTOS_DIR: string = path.join(repoRoot, 'protos');

/** The file declaring `envoy.service.auth.v3.Authorization`, relative to {@link PROTOS_DIR}. */
export const CHECK_PROTO = 'envoy/service/auth/v3/external_auth.proto';

/** The method every gRPC scenario calls, as ghz names it (`--call`). */
export const CHECK_METHOD = 'envoy.service.auth.v3.Authorization.Check';

// The options `authz serve` loaded its protos with before the performance work, fixed here rather than
// imported from src/envoy: the limit servers stand for the stack (grpc-js and proto-loader decoding our
// protos), so they must stay the same whatever src/ does to its own decoding.
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
};

/** `envoy.service.auth.v3.Authorization`, loaded from {@link PROTOS_DIR}. */
export function authorizationService(): ServiceDefinition {
  const root = loadPackageDefinition(loadSync(CHECK_PROTO, LOADER_OPTIONS)) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: { service: ServiceDefinition } } } } };
  };
  return root.envoy.service.auth.v3.Authorization.service;
}

/** What the bench reads of a CheckResponse (codes: 0 OK, 7 PERMISSION_DENIED, 16 UNAUTHENTICATED). */
export interface CheckResponse {
  readonly status?: { readonly code?: number } | null;
  readonly denied_response?: { readonly status?: { readonly code?: number } | null } | null;
}

/** A gRPC client of one Authorization server, for checking a server's answers before it is timed. */
export interface CheckClient {
  check(request: object): Promise<CheckResponse>;
  close(): void;
}

type CheckMethod = (
  request: object,
  options: { deadline: Date },
  callback: (error: Error | null, response?: CheckResponse) => void,
) => void;

/** Connects to `address` (`host:port`, plaintext). */
export function checkClient(address: string): CheckClient {
  const Client = makeGenericClientConstructor(authorizationService(), 'Authorization');
  const client = new Client(address, credentials.createInsecure());
  const check = (client as unknown as { Check: CheckMethod }).Check.bind(client);
  return {
    check: (request) =>
      new Promise((resolve, reject) =>
        check(request, { deadline: new Date(Date.now() + 5_000) }, (error, response) =>
          error !== null || response === undefined
            ? reject(error ?? new Error('no response'))
            : resolve(response),
        ),
      ),
    close: () => client.close(),
  };
}
