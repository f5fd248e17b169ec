import { isMap, isScalar, isSeq, visit, type Node } from 'yaml';
import { PolicyError, type PolicyProblem } from './policy-error.js';
import type { YamlLocations } from './yaml-locations.js';

/** What a policy needs at the least, named when the file holds nothing. */
const EMPTY_POLICY =
  'the policy file is empty (or only comments): it needs at least version, realm, issuers and routes';

/** The YAML 1.1 merge key, which YAML 1.2 (what the policy is read as) leaves an ordinary key. */
const MERGE_KEY = '<<';

/**
 * Problems with the shape of a policy document as a whole, which schema validation would only report as
 * `must be object` or `unknown key "<<"`: a file with nothing in it, a top-level list or scalar, and YAML
 * merge keys. Pure: looks at the parsed document (with positions) only; the problems are located at the
 * node concerned, or at the file as a whole for an empty one.
 *
 * Merge keys are refused rather than merged: YAML 1.2 dropped them, editors and other YAML readers
 * disagree on them, and a policy is easier to review with every key written where it applies.
 *
 * @param file the file name used in the problems.
 */
export function documentShapeProblems(locations: YamlLocations, file: string): PolicyProblem[] {
  const contents = locations.document.contents;
  const at = (node: Node | null | undefined, message: string): PolicyProblem => {
    const offset = node?.range?.[0];
    const { line, column } =
      offset === undefined ? { line: 0, column: 0 } : locations.positionOfOffset(offset);
    return { file, line, column, path: '', message };
  };
  if (contents === null || (isScalar(contents) && contents.value === null && contents.source === '')) {
    return [{ file, line: 0, column: 0, path: '', message: EMPTY_POLICY }];
  }
  if (!isMap(contents)) {
    return [
      at(
        contents,
        `the policy must be a mapping of keys (version: 1, realm: ..., issuers: ..., routes: ...), not ${kindOf(contents)}`,
      ),
    ];
  }
  const problems: PolicyProblem[] = [];
  visit(locations.document, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === MERGE_KEY) {
        problems.push(at(pair.key, 'YAML merge keys (<<) are not supported here: write the keys out'));
      }
    },
  });
  return problems;
}

/**
 * Throws when the document's shape is wrong (see documentShapeProblems); the policy compiler calls it
 * once the YAML is parsed, before the schema is checked.
 *
 * @throws PolicyError `ERR_POLICY_INVALID` with every problem found.
 */
export function checkDocumentShape(locations: YamlLocations, file: string): void {
  const problems = documentShapeProblems(locations, file);
  if (problems.length > 0) throw new PolicyError('ERR_POLICY_INVALID', problems);
}

/** `a list`, `a number`, ...: what a top-level node that is not a mapping is, for the message. */
function kindOf(node: unknown): string {
  if (isSeq(node)) return 'a list';
  if (!isScalar(node)) return 'this';
  const value = node.value;
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'bigint') return 'a number';
  if (typeof value === 'boolean') return `${value} (a boolean)`;
  if (typeof value === 'string') return 'a string';
  return 'a scalar';
}
