import type { CompiledRoute, RouteTable } from './compiled-policy.js';
import { parseRoutePattern } from './route-pattern.js';

/**
 * The routes whose pattern ends at one place in the trie, reduced to what can win there: for each method,
 * the first route (in file order) that accepts it. A later route at the same place is shadowed for every
 * method an earlier one accepts.
 */
interface Terminal {
  /** The first route for each method listed by some route here that comes before `anyMethod`. */
  readonly byMethod: Map<string, CompiledRoute>;
  /** The first route here that applies to every method (no `methods`), if any. */
  anyMethod: CompiledRoute | undefined;
}

/** One segment position of the patterns: a segment trie keyed by literal text, with one parameter branch. */
interface TrieNode {
  /** The lowest route index in this node and below: a branch that cannot beat the route found is skipped. */
  minIndex: number;
  /** Children by exact literal segment text (the empty text is a trailing slash). */
  literals: Map<string, TrieNode> | undefined;
  /** The child for a `{name}` segment: any one non-empty segment. */
  parameter: TrieNode | undefined;
  /** Routes whose pattern ends here: the path must end here too. */
  exact: Terminal | undefined;
  /** Routes whose pattern ends here in `/**`: whatever follows, including nothing. */
  rest: Terminal | undefined;
}

const newNode = (): TrieNode => ({
  minIndex: Number.POSITIVE_INFINITY,
  literals: undefined,
  parameter: undefined,
  exact: undefined,
  rest: undefined,
});

/**
 * Builds the route table of compiled routes (patterns already validated by the compiler).
 *
 * The table is a segment trie. Each route sits at the node its pattern leads to, as an exact end or a
 * `/**` rest end; matching follows every branch the request path can take (the literal child for the
 * segment, and the parameter child for a non-empty one), collects the routes ending along the way, and
 * keeps the lowest route index whose methods accept the request. That is exactly the first match in file
 * order, as a scan of every route would find it, in time bounded by the path's depth and the branches the
 * patterns share rather than by the number of routes.
 */
export function compileRouteTable(routes: readonly CompiledRoute[]): RouteTable {
  const root = newNode();
  // File order, so that each terminal sees its routes first to last.
  for (const route of [...routes].sort((a, b) => a.index - b.index)) {
    const { segments, rest } = parseRoutePattern(route.pattern);
    let node = root;
    node.minIndex = Math.min(node.minIndex, route.index);
    for (const segment of segments) {
      let child: TrieNode | undefined;
      if (segment.kind === 'parameter') {
        child = node.parameter ??= newNode();
      } else {
        node.literals ??= new Map();
        child = node.literals.get(segment.text);
        if (child === undefined) node.literals.set(segment.text, (child = newNode()));
      }
      node = child;
      node.minIndex = Math.min(node.minIndex, route.index);
    }
    const terminal = rest
      ? (node.rest ??= { byMethod: new Map(), anyMethod: undefined })
      : (node.exact ??= { byMethod: new Map(), anyMethod: undefined });
    addToTerminal(terminal, route);
  }
  return new SegmentTrieTable(root);
}

function addToTerminal(terminal: Terminal, route: CompiledRoute): void {
  // An earlier route for every method shadows this one entirely.
  if (terminal.anyMethod !== undefined) return;
  if (route.methods === null) {
    terminal.anyMethod = route;
    return;
  }
  for (const method of route.methods) {
    if (!terminal.byMethod.has(method)) terminal.byMethod.set(method, route);
  }
}

class SegmentTrieTable implements RouteTable {
  constructor(private readonly root: TrieNode) {}

  match(method: string, path: string): CompiledRoute | undefined {
    // Every pattern starts with "/"; "/**" alone also matches the empty path, as its pattern reads.
    if (path === '') return search(this.root, [], 0, method, undefined);
    if (path.charCodeAt(0) !== 0x2f) return undefined;
    return search(this.root, path.slice(1).split('/'), 0, method, undefined);
  }
}

/** The first route accepting `method` among those ending at `terminal`, or undefined. */
function routeAt(terminal: Terminal, method: string): CompiledRoute | undefined {
  return terminal.byMethod.get(method) ?? terminal.anyMethod;
}

function earlier(a: CompiledRoute | undefined, b: CompiledRoute | undefined): CompiledRoute | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.index < a.index ? b : a;
}

/**
 * The first route matching the path's segments from `depth` on, below `node`, or `best` if none comes
 * before it. Each trie node is visited at most once per request (a node stands for one depth).
 */
function search(
  node: TrieNode,
  segments: readonly string[],
  depth: number,
  method: string,
  best: CompiledRoute | undefined,
): CompiledRoute | undefined {
  if (best !== undefined && node.minIndex >= best.index) return best;
  if (node.rest !== undefined) best = earlier(best, routeAt(node.rest, method));
  if (depth === segments.length) {
    return node.exact === undefined ? best : earlier(best, routeAt(node.exact, method));
  }
  const segment = segments[depth]!;
  const literal = node.literals?.get(segment);
  // A parameter never matches an empty segment.
  const parameter = segment === '' ? undefined : node.parameter;
  // The branch holding the earlier routes first, so the other is more often skipped.
  if (literal !== undefined && parameter !== undefined && parameter.minIndex < literal.minIndex) {
    best = search(parameter, segments, depth + 1, method, best);
    return search(literal, segments, depth + 1, method, best);
  }
  if (literal !== undefined) best = search(literal, segments, depth + 1, method, best);
  if (parameter !== undefined) best = search(parameter, segments, depth + 1, method, best);
  return best;
}
