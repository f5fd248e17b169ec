import type { CompiledService, ServiceSelector } from './compiled-policy.js';

/** Finds a request's service: by name, or by host (exact, then one wildcard label), else the implicit one. */
export function createServiceSelector(services: readonly CompiledService[]): ServiceSelector {
  const byName = new Map<string, CompiledService>();
  const byHost = new Map<string, CompiledService>();
  let everyHost: CompiledService | undefined;
  for (const service of services) {
    if (!byName.has(service.name)) byName.set(service.name, service);
    if (service.hosts === null) everyHost ??= service;
    // The first service in file order claiming a host keeps it (check-policy warns about the others).
    for (const host of service.hosts ?? []) if (!byHost.has(host)) byHost.set(host, service);
  }
  return Object.freeze({
    byName: (name: string) => byName.get(name),
    forHost: (host: string | undefined) => {
      if (host !== undefined) {
        const exact = byHost.get(host);
        if (exact !== undefined) return exact;
        const dot = host.indexOf('.');
        if (dot > 0) {
          const wildcard = byHost.get(`*${host.slice(dot)}`);
          if (wildcard !== undefined) return wildcard;
        }
      }
      return everyHost;
    },
  });
}
