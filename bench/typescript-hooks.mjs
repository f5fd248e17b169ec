/*
 * Module customization hooks (https://nodejs.org/api/module.html#customization-hooks) that let Node run
 * the bench's TypeScript in place, registered by register-typescript.mjs. Each .ts file is transpiled on
 * its own with the project's TypeScript (types are checked by `npm run typecheck`, not here), and the
 * `./x.js` specifiers our sources use (NodeNext style) resolve to `./x.ts` when only that exists. Running
 * in place keeps `import.meta.url`, so the test helpers find the repository as they do under vitest.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const COMPILER_OPTIONS = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
  inlineSourceMap: true,
};

/**
 * @param {string} specifier
 * @param {{ parentURL?: string }} context
 * @param {(specifier: string, context: unknown) => Promise<{ url: string }>} nextResolve
 */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    const parentIsTypeScript = context.parentURL?.endsWith('.ts') === true;
    if (!relative || !parentIsTypeScript || !specifier.endsWith('.js')) throw error;
    return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
  }
}

/**
 * @param {string} url
 * @param {unknown} context
 * @param {(url: string, context: unknown) => Promise<unknown>} nextLoad
 */
export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const source = await readFile(fileURLToPath(url), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: COMPILER_OPTIONS, fileName: url });
  return { format: 'module', source: outputText, shortCircuit: true };
}
