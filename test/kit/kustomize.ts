import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { installedBinary } from './installed-binary.js';

/*
 * kustomize, as the deploy/ suites render its folders: the pinned binary scripts/install-deploy-tools.sh
 * builds (`npm run deploy-tools:install`), never a skip when it is missing.
 */

/** The path of kustomize: `$KUSTOMIZE_BIN` if set, else `.tools/bin/kustomize`. */
export function kustomizeBinary(): string {
  return installedBinary({
    name: 'kustomize',
    envVar: 'KUSTOMIZE_BIN',
    installedAt: '.tools/bin/kustomize',
    npmScript: 'deploy-tools:install',
    script: 'scripts/install-deploy-tools.sh',
  });
}

/**
 * `kustomize build DIR`: the objects it renders, as plain values.
 * @throws Error when kustomize fails (its stderr), or on the first YAML syntax error of its output
 */
export function kustomizeBuild<T = Record<string, unknown>>(dir: string): T[] {
  const out = execFileSync(kustomizeBinary(), ['build', dir], { encoding: 'utf8', stdio: 'pipe' });
  return parseAllDocuments(out).map((document, index) => {
    if (document.errors.length > 0)
      throw new Error(`kustomize build ${dir} document ${index}: ${document.errors[0]!.message}`);
    return document.toJS() as T;
  });
}
