import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  argsOf,
  copiesOf,
  readDockerfile,
  stageNamed,
  type DockerCopy,
  type DockerStage,
} from '../../kit/dockerfile.js';

/*
 * The product image, checked without a Docker engine: the Dockerfile's default target, `sidecar`, is made
 * of the sidecar's own build (tsconfig.sidecar.json, which leaves out src/demo/), the protos, the package
 * manifests and production dependencies, and nothing else; docker-compose.yml runs the `demo` target.
 */

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const stages = readDockerfile(path.join(repoRoot, 'Dockerfile'));
const sidecar = stageNamed(stages, 'sidecar');
const sidecarConfig = JSON.parse(readFileSync(path.join(repoRoot, 'tsconfig.sidecar.json'), 'utf8')) as {
  compilerOptions: { outDir: string; composite: boolean; rootDir: string };
  include: string[];
  exclude: string[];
};
const outDir = sidecarConfig.compilerOptions.outDir;

/** The stages whose RUN instructions match `pattern`. */
function stagesRunning(pattern: RegExp): DockerStage[] {
  return stages.filter((stage) => argsOf(stage, 'RUN').some((run) => pattern.test(run)));
}

/** The single stage running `pattern`, by name (a COPY --from names it). */
function onlyStageRunning(pattern: RegExp): string {
  const found = stagesRunning(pattern);
  expect(
    found.map((stage) => stage.name),
    `one stage runs ${pattern}`,
  ).toHaveLength(1);
  expect(found[0]!.name).toBeDefined();
  return found[0]!.name!;
}

const fromContext = (copy: DockerCopy) => copy.from === undefined;

describe('Dockerfile: the sidecar target (the product image)', () => {
  it('is the last stage, so a plain `docker build` makes it', () => {
    expect(stages.at(-1)?.name).toBe('sidecar');
  });

  it('starts from a base image, not from a build stage whose files it would inherit', () => {
    const stageNames = stages.map((stage) => stage.name);
    expect(stageNames).not.toContain(sidecar.base);
    expect(sidecar.base).toMatch(/^node:\d+/);
  });

  it('copies from the build context only the package manifests and the protos', () => {
    const sources = copiesOf(sidecar)
      .filter(fromContext)
      .flatMap((copy) => copy.sources);
    expect(sources.sort()).toEqual(['package-lock.json', 'package.json', 'protos']);
  });

  it("copies from other stages only the sidecar build's output and the production dependencies", () => {
    const sidecarBuild = onlyStageRunning(/\btsc -p tsconfig\.sidecar\.json\b|npm run build:sidecar\b/);
    const prodDeps = onlyStageRunning(/\bnpm ci\b.*--omit=dev\b/);
    const copied = copiesOf(sidecar)
      .filter((copy) => !fromContext(copy))
      .map((copy) => ({ from: copy.from, sources: copy.sources, destination: copy.destination }));
    expect(copied).toEqual([
      { from: prodDeps, sources: ['/app/node_modules'], destination: './node_modules' },
      { from: sidecarBuild, sources: [`/app/${outDir}`], destination: './dist' },
    ]);
  });

  it('never copies the web app, the full build (dist/) or demo sources', () => {
    const sources = copiesOf(sidecar).flatMap((copy) => copy.sources);
    for (const source of sources) {
      expect(source).not.toMatch(/(^|\/)web(\/|$)/);
      expect(source).not.toMatch(/(^|\/)dist(\/|$)/);
      expect(source).not.toMatch(/(^|\/)src(\/|$)/);
      expect(source).not.toMatch(/demo/);
    }
  });

  it('builds its JavaScript from the sidecar tsconfig, which leaves src/demo/ out', () => {
    const sidecarBuild = stageNamed(stages, onlyStageRunning(/\btsc -p tsconfig\.sidecar\.json\b/));
    const sources = copiesOf(sidecarBuild)
      .filter(fromContext)
      .flatMap((copy) => copy.sources);
    expect(sources).toContain('tsconfig.sidecar.json');
    expect(sources).not.toContain('web');

    // composite: tsc refuses (TS6307) any included file importing one outside `include`/`exclude`.
    expect(sidecarConfig.compilerOptions.composite).toBe(true);
    expect(sidecarConfig.compilerOptions.rootDir).toBe('src');
    expect(sidecarConfig.exclude).toEqual(['src/demo/**']);
    expect(sidecarConfig.include.every((pattern) => pattern.startsWith('src/'))).toBe(true);
    expect(outDir).toBe('dist-sidecar');
  });

  it('installs production dependencies only, from the lockfile', () => {
    const prodDeps = stageNamed(stages, onlyStageRunning(/\bnpm ci\b.*--omit=dev\b/));
    expect(
      copiesOf(prodDeps)
        .filter(fromContext)
        .flatMap((copy) => copy.sources),
    ).toEqual(['package.json', 'package-lock.json']);
    expect(argsOf(sidecar, 'ENV')).toContain('NODE_ENV=production');
  });

  it('runs `node dist/cli/main.js serve` as the non-root node user, and runs nothing at build time', () => {
    expect(argsOf(sidecar, 'USER').at(-1)).toBe('node');
    expect(argsOf(sidecar, 'ENTRYPOINT').map((entry) => JSON.parse(entry) as unknown)).toEqual([
      ['node', 'dist/cli/main.js'],
    ]);
    expect((JSON.parse(argsOf(sidecar, 'CMD').at(-1)!) as string[])[0]).toBe('serve');
    // Only copied files: no RUN leaves anything writable or generated in the image.
    expect(argsOf(sidecar, 'RUN')).toEqual([]);
  });
});

describe('docker-compose.yml: the demo stack', () => {
  it('builds the demo target for every service built from the Dockerfile', () => {
    const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { build?: unknown }>;
    };
    const built = Object.entries(compose.services).filter(([, service]) => service.build !== undefined);
    expect(built.map(([name]) => name).sort()).toEqual(['authz', 'bank', 'dev-idp']);
    for (const [name, service] of built) {
      expect(service.build, name).toEqual({ context: '.', target: 'demo' });
    }
    expect(stageNamed(stages, 'demo')).toBeDefined();
  });
});
