import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTOS_DIR, loadAuthorizationService } from '../../../src/envoy/authorization-proto.js';
import type { CheckRequestMessage } from '../../../src/envoy/check-messages.js';
import { checkResponseForAnswer } from '../../../src/envoy/check-response-for-answer.js';
import { requestFactsFromCheck } from '../../../src/envoy/request-facts-from-check.js';

/*
 * Our minimal protos (protos/) against the upstream Envoy API shipped by @grpc/grpc-js-xds. Both sides are
 * loaded with protobufjs; field by field, our definitions must say what upstream says, and messages must
 * survive the trip between the two on the wire.
 */

const require = createRequire(import.meta.url);
const XDS_DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
/** Include roots of the upstream protos, plus protobufjs's own google/protobuf/*.proto (descriptor.proto). */
const UPSTREAM_INCLUDE_DIRS = [
  ...['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map((dir) => path.join(XDS_DEPS, dir)),
  path.dirname(require.resolve('protobufjs/package.json')),
];
const UPSTREAM_ENTRY = 'envoy/service/auth/v3/external_auth.proto';

function loadRoot(files: readonly string[], includeDirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    throw new Error(`${target} is in none of the include dirs ${includeDirs.join(', ')}`);
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

/** Every .proto file under protos/, relative to it (the same path as upstream's). */
const ourFiles = (readdirSync(PROTOS_DIR, { recursive: true }) as string[])
  .filter((file) => file.endsWith('.proto'))
  .map((file) => file.split(path.sep).join('/'))
  .sort();

const ours = loadRoot(ourFiles, [PROTOS_DIR]);
const upstream = loadRoot([UPSTREAM_ENTRY, ...ourFiles], UPSTREAM_INCLUDE_DIRS);

interface Definitions {
  readonly types: protobuf.Type[];
  readonly enums: protobuf.Enum[];
  readonly services: protobuf.Service[];
}

function walk(namespace: protobuf.NamespaceBase, into: Definitions): Definitions {
  for (const nested of namespace.nestedArray) {
    if (nested instanceof protobuf.Type) into.types.push(nested);
    else if (nested instanceof protobuf.Enum) into.enums.push(nested);
    else if (nested instanceof protobuf.Service) into.services.push(nested);
    if (nested instanceof protobuf.Namespace) walk(nested, into);
  }
  return into;
}

const ourDefinitions = walk(ours, { types: [], enums: [], services: [] });

/** Test-table rows: the full name without protobufjs's leading dot, and the definition. */
const named = <T extends protobuf.ReflectionObject>(items: readonly T[]) =>
  items.map((item) => [item.fullName.slice(1), item] as const);

/** What a field means on the wire: number, type (full name for messages and enums), cardinality. */
function wireShape(field: protobuf.Field) {
  const resolved = field.resolve().resolvedType;
  return {
    id: field.id,
    kind:
      resolved instanceof protobuf.Enum ? 'enum' : resolved instanceof protobuf.Type ? 'message' : 'scalar',
    type: resolved === null ? field.type : resolved.fullName,
    repeated: field.repeated,
    map: field.map,
    keyType: field instanceof protobuf.MapField ? field.keyType : undefined,
    oneof: field.partOf?.name,
  };
}

function upstreamType(fullName: string): protobuf.Type {
  const found = upstream.lookup(fullName);
  if (!(found instanceof protobuf.Type)) throw new Error(`upstream has no message ${fullName}`);
  return found;
}

function upstreamEnum(fullName: string): protobuf.Enum {
  const found = upstream.lookup(fullName);
  if (!(found instanceof protobuf.Enum)) throw new Error(`upstream has no enum ${fullName}`);
  return found;
}

describe('protos/ against the upstream Envoy API (@grpc/grpc-js-xds deps)', () => {
  it('finds our proto files at the same paths upstream, and the definitions in them', () => {
    expect(ourFiles).toContain(UPSTREAM_ENTRY);
    for (const file of ourFiles) {
      expect(
        UPSTREAM_INCLUDE_DIRS.some((dir) => existsSync(path.join(dir, file))),
        `${file} upstream`,
      ).toBe(true);
    }
    expect(ourDefinitions.types.length).toBeGreaterThanOrEqual(ourFiles.length);
    expect(ourDefinitions.enums.length).toBeGreaterThan(0);
    expect(ourDefinitions.services.length).toBeGreaterThan(0);
  });

  describe.each(named(ourDefinitions.types))('message %s', (name, type) => {
    it('exists upstream, with each of our fields under the same number, type and cardinality', () => {
      const theirs = upstreamType(name);
      expect(type.fieldsArray.length).toBeGreaterThan(0);
      for (const field of type.fieldsArray) {
        const counterpart = theirs.fields[field.name];
        expect(counterpart, `${name}.${field.name} upstream`).toBeDefined();
        expect(wireShape(counterpart!), `${name}.${field.name}`).toEqual(wireShape(field));
        // No other upstream field may use our number (it would be read as ours).
        expect(theirs.fieldsById[field.id]?.name, `${name} field number ${field.id}`).toBe(field.name);
      }
      for (const oneof of type.oneofsArray) {
        expect(theirs.oneofs[oneof.name]?.oneof, `${name}.${oneof.name} members upstream`).toEqual(
          expect.arrayContaining(oneof.oneof),
        );
      }
    });
  });

  describe.each(named(ourDefinitions.enums))('enum %s', (name, type) => {
    it('exists upstream, each of our values under the same name with the same number', () => {
      const theirs = upstreamEnum(name);
      expect(Object.keys(type.values).length).toBeGreaterThan(0);
      for (const [valueName, number] of Object.entries(type.values)) {
        expect(theirs.values[valueName], `${name}.${valueName}`).toBe(number);
      }
    });
  });

  describe.each(named(ourDefinitions.services))('service %s', (name, service) => {
    it('exists upstream with the same methods, request and response types', () => {
      const theirs = upstream.lookupService(name);
      for (const method of service.methodsArray) {
        const counterpart = theirs.methods[method.name];
        expect(counterpart, `${name}/${method.name} upstream`).toBeDefined();
        method.resolve();
        counterpart!.resolve();
        expect({
          request: counterpart!.resolvedRequestType?.fullName,
          response: counterpart!.resolvedResponseType?.fullName,
          requestStream: Boolean(counterpart!.requestStream),
          responseStream: Boolean(counterpart!.responseStream),
        }).toEqual({
          request: method.resolvedRequestType?.fullName,
          response: method.resolvedResponseType?.fullName,
          requestStream: Boolean(method.requestStream),
          responseStream: Boolean(method.responseStream),
        });
      }
    });
  });
});

describe('wire round trips between upstream and our protos', () => {
  /** The server's own codec: proto-loader over protos/ with PROTO_LOADER_OPTIONS. */
  const { Check } = loadAuthorizationService();
  if (Check === undefined) throw new Error('our Authorization service has no Check method');

  const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

  /** A CheckRequest as Envoy 1.3x sends it, upstream-only fields included. */
  const envoyRequest = {
    attributes: {
      source: {
        address: { socket_address: { address: '203.0.113.7', port_value: 53122 } },
        principal: 'spiffe://cluster.local/ns/default/sa/client',
        // URL-encoded PEM, as include_peer_certificate sends it; the adapter passes it on unread.
        certificate: '-----BEGIN%20CERTIFICATE-----%0AMIIB...%0A-----END%20CERTIFICATE-----%0A',
        labels: {},
      },
      destination: {
        address: { socket_address: { address: '10.0.0.5', port_value: 8000 } },
        principal: '',
        labels: { app: 'bank' },
      },
      request: {
        time: { seconds: 1_767_225_600, nanos: 250_000_000 },
        http: {
          id: '7b0c3f5e-2a4d-4d1e-9a51-0f5f7e1c2d3b',
          method: 'POST',
          path: '/transfer?currency=EUR&note=a%20b',
          host: 'bank.example',
          scheme: 'https',
          protocol: 'HTTP/2',
          query: '',
          fragment: '',
          size: 42,
          headers: {
            ':authority': 'bank.example',
            ':method': 'POST',
            ':path': '/transfer?currency=EUR&note=a%20b',
            ':scheme': 'https',
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'x-request-id': '7b0c3f5e-2a4d-4d1e-9a51-0f5f7e1c2d3b',
          },
          header_map: {
            headers: [
              { key: ':authority', raw_value: Buffer.from('bank.example') },
              { key: 'authorization', raw_value: Buffer.from(`Bearer ${token}`) },
              { key: 'authorization', raw_value: Buffer.from('Basic YWxpY2U6cHc=') },
              { key: 'x-legacy', value: 'text-value' },
              { key: 'DPoP', raw_value: Buffer.from('eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln') },
            ],
          },
          body: '{"to":"bob","amount":25}',
          raw_body: Buffer.from('{"to":"bob","amount":25}'),
        },
      },
      context_extensions: { virtual_host: 'bank', route: 'transfer', service: 'bank' },
      metadata_context: {
        filter_metadata: {
          'envoy.filters.http.jwt_authn': { fields: { sub: { string_value: 'alice' } } },
        },
      },
      tls_session: { sni: 'bank.example' },
    },
  };

  it('decodes an upstream-encoded CheckRequest with our protos: every field we read comes through', () => {
    const UpstreamCheckRequest = upstreamType('envoy.service.auth.v3.CheckRequest');
    expect(UpstreamCheckRequest.verify(envoyRequest)).toBeNull();
    const bytes = UpstreamCheckRequest.encode(UpstreamCheckRequest.fromObject(envoyRequest)).finish();

    const decoded = Check.requestDeserialize(Buffer.from(bytes)) as CheckRequestMessage;
    const http = decoded.attributes?.request?.http;
    expect(http).toMatchObject({
      id: '7b0c3f5e-2a4d-4d1e-9a51-0f5f7e1c2d3b',
      method: 'POST',
      path: '/transfer?currency=EUR&note=a%20b',
      host: 'bank.example',
      headers: envoyRequest.attributes.request.http.headers,
    });
    const entries = http?.header_map?.headers ?? [];
    expect(entries.map((entry) => entry.key)).toEqual([
      ':authority',
      'authorization',
      'authorization',
      'x-legacy',
      'DPoP',
    ]);
    expect(entries.map((entry) => Buffer.from(entry.raw_value ?? []).toString('latin1'))).toEqual([
      'bank.example',
      `Bearer ${token}`,
      'Basic YWxpY2U6cHc=',
      '',
      'eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln',
    ]);
    expect(entries[3]?.value).toBe('text-value');

    // What the adapter makes of it: header_map wins, so both Authorization lines are seen, and two
    // Authorization headers are malformed credentials (RFC 6750 allows one).
    expect(requestFactsFromCheck(decoded)).toEqual({
      method: 'POST',
      target: '/transfer?currency=EUR&note=a%20b',
      host: 'bank.example',
      serviceName: 'bank',
      credentials: { kind: 'malformed', description: 'more than one Authorization header' },
      dpopProofs: ['eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.c2ln'],
      clientCertificate: '-----BEGIN%20CERTIFICATE-----%0AMIIB...%0A-----END%20CERTIFICATE-----%0A',
      requestId: '7b0c3f5e-2a4d-4d1e-9a51-0f5f7e1c2d3b',
    });

    // Without header_map, the headers map is read.
    const mapOnly = structuredClone(envoyRequest);
    delete (mapOnly.attributes.request.http as { header_map?: unknown }).header_map;
    const mapBytes = UpstreamCheckRequest.encode(UpstreamCheckRequest.fromObject(mapOnly)).finish();
    const mapFacts = requestFactsFromCheck(
      Check.requestDeserialize(Buffer.from(mapBytes)) as CheckRequestMessage,
    );
    expect(mapFacts.credentials).toEqual({ kind: 'presented', scheme: 'Bearer', value: token });
  });

  const CHECK_RESPONSE = 'envoy.service.auth.v3.CheckResponse';
  /** Enum names rather than numbers, so that upstream's naming of each value is compared too. */
  const CONVERSION: protobuf.IConversionOptions = {
    enums: String,
    longs: String,
    bytes: String,
    defaults: true,
    oneofs: true,
  };

  /** `value` (a decoded upstream message) restricted to the fields, and oneofs, that `type` (ours) declares. */
  function project(type: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
    const projected: Record<string, unknown> = {};
    for (const field of type.fieldsArray) {
      if (!(field.name in value)) continue;
      const fieldValue = value[field.name];
      const message = field.resolve().resolvedType;
      if (!(message instanceof protobuf.Type) || field.map || fieldValue === null) {
        projected[field.name] = fieldValue;
      } else if (field.repeated) {
        projected[field.name] = (fieldValue as Record<string, unknown>[]).map((item) =>
          project(message, item),
        );
      } else {
        projected[field.name] = project(message, fieldValue as Record<string, unknown>);
      }
    }
    for (const oneof of type.oneofsArray) if (oneof.name in value) projected[oneof.name] = value[oneof.name];
    return projected;
  }

  /** Decodes CheckResponse bytes with both definitions; upstream's view is projected onto our fields. */
  function decodeBoth(bytes: Uint8Array) {
    const mine = ours.lookupType(CHECK_RESPONSE);
    const theirs = upstreamType(CHECK_RESPONSE);
    const upstreamSparse = theirs.toObject(theirs.decode(bytes), { ...CONVERSION, defaults: false });
    return {
      ours: mine.toObject(mine.decode(bytes), CONVERSION),
      upstream: project(mine, theirs.toObject(theirs.decode(bytes), CONVERSION)),
      upstreamSparse,
      upstreamSparseProjected: project(mine, upstreamSparse),
    };
  }

  function expectSameOnBothSides(bytes: Uint8Array, expected: Record<string, unknown>) {
    const decoded = decodeBoth(bytes);
    expect(decoded.ours).toEqual(expected);
    expect(decoded.upstream).toEqual(expected);
    // Nothing upstream-only is on the wire: projecting onto our fields loses nothing.
    expect(decoded.upstreamSparseProjected).toEqual(decoded.upstreamSparse);
  }

  const overwrite = (key: string, value: string) => ({
    header: { key, value, raw_value: '' },
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  });

  it('encodes an allow with our protos that upstream decodes to the same values', () => {
    const message = checkResponseForAnswer({
      kind: 'allow',
      setHeaders: [
        ['x-auth-subject', 'alice'],
        ['x-auth-scopes', 'view:balance transfer:funds'],
      ],
      removeHeaders: ['x-auth-debug', 'x-auth-tenant'],
    });
    expectSameOnBothSides(Check.responseSerialize(message), {
      status: { code: 0, message: '' },
      http_response: 'ok_response',
      ok_response: {
        headers: [
          overwrite('x-auth-subject', 'alice'),
          overwrite('x-auth-scopes', 'view:balance transfer:funds'),
        ],
        headers_to_remove: ['x-auth-debug', 'x-auth-tenant'],
      },
    });
    // The number the adapter writes is upstream's OVERWRITE_IF_EXISTS_OR_ADD.
    expect(upstreamEnum('envoy.config.core.v3.HeaderValueOption.HeaderAppendAction').values).toMatchObject({
      OVERWRITE_IF_EXISTS_OR_ADD: message.ok_response?.headers[0]?.append_action,
    });
  });

  it('encodes a denial with our protos that upstream decodes to the same values', () => {
    const body = JSON.stringify({
      error: 'insufficient_scope',
      error_description: 'the token lacks a required scope',
    });
    const challenge = 'Bearer realm="bank-api", error="insufficient_scope", scope="transfer:funds"';
    const message = checkResponseForAnswer({
      kind: 'deny',
      status: 403,
      headers: [
        ['content-type', 'application/json'],
        ['cache-control', 'no-store'],
        ['www-authenticate', challenge],
      ],
      body,
    });
    expectSameOnBothSides(Check.responseSerialize(message), {
      status: { code: 7, message: '' }, // PERMISSION_DENIED
      http_response: 'denied_response',
      denied_response: {
        status: { code: 'Forbidden' },
        headers: [
          overwrite('content-type', 'application/json'),
          overwrite('cache-control', 'no-store'),
          overwrite('www-authenticate', challenge),
        ],
        body,
      },
    });
  });

  it('appends a second challenge of the same name, so that each scheme gets its own line (RFC 9449 section 7.1)', () => {
    const bearer = 'Bearer realm="bank-api", error="invalid_token", error_description="expired"';
    const dpop = 'DPoP realm="bank-api", algs="ES256"';
    const message = checkResponseForAnswer({
      kind: 'deny',
      status: 401,
      headers: [
        ['content-type', 'application/json'],
        ['www-authenticate', bearer],
        ['www-authenticate', dpop],
        ['dpop-nonce', 'n-1'],
      ],
      body: '{}',
    });
    expectSameOnBothSides(Check.responseSerialize(message), {
      status: { code: 16, message: '' },
      http_response: 'denied_response',
      denied_response: {
        status: { code: 'Unauthorized' },
        headers: [
          overwrite('content-type', 'application/json'),
          overwrite('www-authenticate', bearer),
          {
            header: { key: 'www-authenticate', value: dpop, raw_value: '' },
            append_action: 'APPEND_IF_EXISTS_OR_ADD',
          },
          overwrite('dpop-nonce', 'n-1'),
        ],
        body: '{}',
      },
    });
  });

  it.each([
    [400, 'BadRequest', 3],
    [401, 'Unauthorized', 16],
    [503, 'ServiceUnavailable', 14],
  ])('encodes a %i denial that upstream reads as %s', (status, name, grpcCode) => {
    const message = checkResponseForAnswer({ kind: 'deny', status, headers: [], body: '{}' });
    expectSameOnBothSides(Check.responseSerialize(message), {
      status: { code: grpcCode, message: '' },
      http_response: 'denied_response',
      denied_response: { status: { code: name }, headers: [], body: '{}' },
    });
  });
});
