import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';

/** A place in a YAML document: keys and sequence indexes from the root, e.g. `['cases', 2, 'expect']`. */
export type YamlPath = readonly (string | number)[];

/** A 1-based line and column; 0 and 0 when the place is not in the file. */
export interface YamlPosition {
  readonly line: number;
  readonly column: number;
}

/**
 * A YAML text parsed with positions kept, so that findings about its data can name the line an editor
 * should jump to: the policy compiler's problems, `check-policy`'s warnings and policy test files' problems
 * are all located by it.
 */
export class YamlLocations {
  private readonly lines = new LineCounter();
  /** The parsed document; `errors` lists syntax problems, if any. */
  readonly document: Document;

  constructor(text: string) {
    this.document = parseDocument(text, {
      lineCounter: this.lines,
      uniqueKeys: true,
      strict: true,
      prettyErrors: false,
    });
  }

  /** The position of a character offset in the text. */
  positionOfOffset(offset: number): YamlPosition {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * Where the deepest existing node on `path` starts: for a map entry its key, for a sequence item the
   * item. A path that goes further than the document points at the last node that exists (for a key
   * whose value lacks the rest of the path, that value).
   */
  positionOf(path: YamlPath): YamlPosition {
    let node: unknown = this.document.contents;
    let offset = rangeStart(node);
    for (const [i, segment] of path.entries()) {
      if (isMap(node)) {
        const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === segment);
        if (pair === undefined) break;
        offset = rangeStart(pair.key) ?? offset;
        node = pair.value;
        // A problem with a key's value points at the key: that is where the editor's eye goes.
        if (i < path.length - 1 && node !== null) offset = rangeStart(node) ?? offset;
      } else if (isSeq(node) && typeof segment === 'number') {
        node = node.items[segment];
        offset = rangeStart(node) ?? offset;
      } else {
        break;
      }
    }
    return offset === undefined ? { line: 0, column: 0 } : this.positionOfOffset(offset);
  }
}

/** `routes[1].scopes[0]`: a path the way policy problems name them. */
export function displayYamlPath(path: YamlPath): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function rangeStart(node: unknown): number | undefined {
  return (node as Node | null)?.range?.[0];
}
