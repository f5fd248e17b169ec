import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The documentation's links (README.md, CONTRIBUTING.md, docs/, deploy/**\/README.md): every relative link
 * and image names a file of the repository, inside it, and every `#anchor` a heading of its target (GitHub's
 * slugs); a link out of the repository goes only to a public standard or an upstream project's docs.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The hosts a document may link to: standards bodies and the upstream projects' own documentation. */
const ALLOWED_HOSTS = new Set([
  'www.rfc-editor.org',
  'rfc-editor.org',
  'datatracker.ietf.org',
  'openid.net',
  'www.envoyproxy.io',
  'gateway.envoyproxy.io',
  'istio.io',
  'kubernetes.io',
  'nodejs.org',
  'auth0.com',
  'github.com',
]);

/** On github.com, only these owners: the upstream projects, not arbitrary repositories. */
const ALLOWED_GITHUB_OWNERS = new Set(['envoyproxy', 'panva', 'istio', 'kubernetes', 'kubernetes-sigs']);

/** Addresses of the demo on this machine, which GitHub autolinks in prose: not links out. */
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost']);

function markdownFiles(): string[] {
  const files = ['README.md', 'CONTRIBUTING.md'];
  const under = (dir: string, keep: (name: string) => boolean): string[] =>
    readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .map((file) => path.join(dir, file).split(path.sep).join('/'))
      .filter((file) => keep(path.basename(file)) && statSync(path.join(ROOT, file)).isFile());
  files.push(...under('docs', (name) => name.endsWith('.md')));
  files.push(...under('deploy', (name) => name === 'README.md'));
  return files.sort();
}

/** The text outside fenced code blocks and inline code spans, line for line. */
function prose(text: string): string {
  let fenced = false;
  return text
    .split('\n')
    .map((line) => {
      if (/^\s*```/.test(line)) {
        fenced = !fenced;
        return '';
      }
      return fenced ? '' : line.replace(/`+[^`]*`+/g, '');
    })
    .join('\n');
}

interface Link {
  readonly target: string;
  readonly line: number;
}

/** Inline links and images, `[text](target)` and `![alt](target)`, and `<https://...>` autolinks. */
function linksOf(text: string): Link[] {
  const links: Link[] = [];
  prose(text)
    .split('\n')
    .forEach((line, index) => {
      for (const match of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        links.push({ target: match[1]!, line: index + 1 });
      }
      for (const match of line.matchAll(/<(https?:\/\/[^>\s]+)>/g)) {
        links.push({ target: match[1]!, line: index + 1 });
      }
    });
  return links;
}

/** Bare URLs in prose, which GitHub turns into links too. */
function bareUrlsOf(text: string): Link[] {
  const urls: Link[] = [];
  prose(text)
    .split('\n')
    .forEach((line, index) => {
      const withoutLinks = line.replace(/\]\([^)]*\)/g, '](…)').replace(/<https?:\/\/[^>]*>/g, '');
      for (const match of withoutLinks.matchAll(/https?:\/\/[^\s)>\]]+/g)) {
        urls.push({ target: match[0], line: index + 1 });
      }
    });
  return urls;
}

/**
 * GitHub's anchor of a heading: the text as rendered (code spans' text, links' text), lower case, without
 * punctuation but `-` and `_`, spaces as `-`; a repeated slug gets `-1`, `-2`, ...
 */
export function headingSlugs(text: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const rendered = heading[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const base = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count === 0 ? base : `${base}-${count}`);
  }
  return slugs;
}

const FILES = markdownFiles();

describe('the documentation links', () => {
  it('covers the README, CONTRIBUTING.md, docs/ and the deploy READMEs', () => {
    expect(FILES).toContain('README.md');
    expect(FILES).toContain('CONTRIBUTING.md');
    expect(FILES).toContain('docs/policy.md');
    expect(FILES).toContain('docs/results/performance-history.md');
    expect(FILES).toContain('deploy/istio/README.md');
  });

  it('computes anchors as GitHub does', () => {
    const slugs = headingSlugs(
      '# A `code` title\n## Services: several APIs (RFC 9449, RFC 8705)\n## Step-up\n## Step-up\n```\n# not a heading\n```\n',
    );
    expect([...slugs]).toEqual([
      'a-code-title',
      'services-several-apis-rfc-9449-rfc-8705',
      'step-up',
      'step-up-1',
    ]);
  });

  it.each(FILES)(
    '%s: every relative link names a file of the repository, and every anchor a heading',
    (file) => {
      const text = readFileSync(path.join(ROOT, file), 'utf8');
      const problems: string[] = [];
      for (const { target, line } of linksOf(text)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // a URL: the next test
        const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
        const resolved =
          pathPart === '' ? path.join(ROOT, file) : path.resolve(ROOT, path.dirname(file), pathPart);
        const inside = path.relative(ROOT, resolved);
        if (inside.startsWith('..') || path.isAbsolute(inside) || pathPart.startsWith('/')) {
          problems.push(`${file}:${line}: ${target} leaves the repository`);
          continue;
        }
        if (!existsSync(resolved)) {
          problems.push(`${file}:${line}: ${target}: no such file`);
          continue;
        }
        if (anchor !== undefined) {
          if (!resolved.endsWith('.md')) {
            problems.push(`${file}:${line}: ${target}: an anchor into a file that is not Markdown`);
          } else if (!headingSlugs(readFileSync(resolved, 'utf8')).has(anchor)) {
            problems.push(`${file}:${line}: ${target}: no heading #${anchor} in ${inside}`);
          }
        }
      }
      expect(problems).toEqual([]);
    },
  );

  it.each(FILES)('%s: links out of the repository go only to standards and upstream docs', (file) => {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    const problems: string[] = [];
    for (const { target, line } of [...linksOf(text), ...bareUrlsOf(text)]) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      let url: URL;
      try {
        url = new URL(target);
      } catch {
        problems.push(`${file}:${line}: ${target}: not a URL`);
        continue;
      }
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname))) {
        problems.push(`${file}:${line}: ${target}: only https, or http to the local demo`);
      } else if (LOCAL_HOSTS.has(url.hostname)) {
        continue;
      } else if (!ALLOWED_HOSTS.has(url.hostname)) {
        problems.push(`${file}:${line}: ${target}: ${url.hostname} is not an allowed host`);
      } else if (
        url.hostname === 'github.com' &&
        !ALLOWED_GITHUB_OWNERS.has(url.pathname.split('/')[1] ?? '')
      ) {
        problems.push(`${file}:${line}: ${target}: not an upstream project's repository`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('never links to a file outside the repository, such as ../shared', () => {
    for (const file of FILES) {
      expect(readFileSync(path.join(ROOT, file), 'utf8'), file).not.toMatch(/\.\.\/shared\//);
    }
  });
});
