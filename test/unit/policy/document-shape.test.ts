import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../../../src/policy/compile-policy.js';
import { documentShapeProblems } from '../../../src/policy/document-shape.js';
import { YamlLocations } from '../../../src/policy/yaml-locations.js';
import { expectSingleProblem, policyErrorFrom, policyText } from './compile-policy-support.js';

const EMPTY =
  'the policy file is empty (or only comments): it needs at least version, realm, issuers and routes';
const NOT_A_MAPPING =
  'the policy must be a mapping of keys (version: 1, realm: ..., issuers: ..., routes: ...), not ';
const MERGE_KEY = 'YAML merge keys (<<) are not supported here: write the keys out';

const shapeOf = (text: string) => documentShapeProblems(new YamlLocations(text), 'policy.yaml');

describe('documentShapeProblems: a policy file that is not a mapping of keys', () => {
  it.each([
    ['an empty file', ''],
    ['blank lines', '\n\n  \n'],
    ['only comments', '# policy.yaml\n# to be written\n'],
    ['a document marker and a comment', '--- # nothing yet\n'],
  ])('says that %s is empty and what it needs, for the whole file', (_case, text) => {
    expect(shapeOf(text)).toEqual([{ file: 'policy.yaml', line: 0, column: 0, path: '', message: EMPTY }]);
  });

  it.each([
    ['a list', '# a list of routes by mistake\n- path: /balance\n  scopes: [view:balance]\n', 'a list', 2],
    ['a number', '42\n', 'a number', 1],
    ['a string', 'version 1\n', 'a string', 1],
    ['a boolean', 'true\n', 'true (a boolean)', 1],
    ['an explicit null', '# nothing\nnull\n', 'null', 2],
  ])('says what %s is instead, at its line', (_case, text, kind, line) => {
    expect(shapeOf(text)).toEqual([
      { file: 'policy.yaml', line, column: 1, path: '', message: NOT_A_MAPPING + kind },
    ]);
  });

  it('finds nothing wrong with a mapping, whatever its keys', () => {
    expect(shapeOf(policyText())).toEqual([]);
    expect(shapeOf('unexpected: true\n')).toEqual([]);
  });
});

describe('documentShapeProblems: YAML merge keys', () => {
  it('refuses every << at its own line and column, at any depth', () => {
    const text = [
      'defaults: &defaults',
      '  algorithms: [RS256]',
      'issuers:',
      '  - issuer: https://idp.example/',
      '    <<: *defaults',
      'routes:',
      '  - { <<: { public: true }, path: /healthz }',
      '',
    ].join('\n');
    expect(shapeOf(text)).toEqual([
      { file: 'policy.yaml', line: 5, column: 5, path: '', message: MERGE_KEY },
      { file: 'policy.yaml', line: 7, column: 7, path: '', message: MERGE_KEY },
    ]);
  });

  it('takes a quoted "<<" for what it is written as, the same key', () => {
    expect(shapeOf('"<<": 1\n')).toHaveLength(1);
  });
});

describe('compilePolicy: the shape is checked before the schema (ERR_POLICY_INVALID)', () => {
  it.each([
    ['an empty file', '', { line: 0, message: EMPTY }],
    ['only comments', '# TODO\n', { line: 0, message: EMPTY }],
    ['a top-level list', '- version: 1\n', { line: 1, message: NOT_A_MAPPING + 'a list' }],
    ['a number', '1\n', { line: 1, message: NOT_A_MAPPING + 'a number' }],
  ])('refuses %s with one problem that says so', (_case, text, expected) => {
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));
    expectSingleProblem(error, 'ERR_POLICY_INVALID', { path: '', ...expected });
  });

  it('refuses a merge key in an otherwise valid policy, at the <<, not as unknown key "<<"', () => {
    const text = policyText({ routes: ['  - { path: /healthz, public: true, <<: { methods: [GET] } }'] });
    const error = policyErrorFrom(() => compilePolicy(text, 'policy.yaml'));
    const problem = expectSingleProblem(error, 'ERR_POLICY_INVALID', {
      line: 9,
      path: '',
      message: MERGE_KEY,
    });
    expect(problem.column).toBe(37);
    expect(error.message).toBe(`policy.yaml:9:37: ${MERGE_KEY}`);
  });

  it('names the file alone for an empty one', () => {
    const error = policyErrorFrom(() => compilePolicy('', 'policy.yaml'));
    expect(error.message).toBe(`policy.yaml: ${EMPTY}`);
  });
});
