import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The folder holding this project's minimal copies of the Envoy protos (see protos/README.md). */
export const PROTOS_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));

/** Options shared by the server and the test clients so both see messages the same way. */
export const PROTO_LOADER_OPTIONS = Object.freeze({
  keepCase: true, // field names as in the .proto files (snake_case), as Envoy's docs name them
  longs: String,
  enums: Number,
  defaults: true, // absent scalars read as their zero values: no undefined checks in the adapter
  oneofs: true,
  includeDirs: [PROTOS_DIR],
});

/** Loads `envoy.service.auth.v3.Authorization` from the project's protos. */
export function loadAuthorizationService(): ServiceDefinition {
  const definition = loadSync('envoy/service/auth/v3/external_auth.proto', PROTO_LOADER_OPTIONS);
  const root = loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: { service: ServiceDefinition } } } } };
  };
  return root.envoy.service.auth.v3.Authorization.service;
}
