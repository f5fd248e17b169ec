import { readFileSync } from 'node:fs';

/*
 * Just enough of the Dockerfile syntax (https://docs.docker.com/reference/dockerfile/) to check ours
 * without a Docker engine: comments, line continuations, stages, and COPY's flags and sources.
 */

/** One instruction, its continuation lines joined: `COPY --from=build /app/dist ./dist`. */
export interface DockerInstruction {
  /** Upper-cased: `COPY`, `RUN`, ... */
  readonly keyword: string;
  /** Everything after the keyword, trimmed. */
  readonly args: string;
}

/** A build stage: `FROM base [AS name]` and the instructions up to the next FROM. */
export interface DockerStage {
  readonly base: string;
  readonly name: string | undefined;
  readonly instructions: readonly DockerInstruction[];
}

/** A COPY (or ADD) instruction taken apart. */
export interface DockerCopy {
  /** `--from=STAGE`; undefined: from the build context. */
  readonly from: string | undefined;
  readonly sources: readonly string[];
  readonly destination: string;
}

/** The stages of a Dockerfile, in order. */
export function parseDockerfile(text: string): DockerStage[] {
  const instructions: DockerInstruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    // Comment lines (parser directives such as `# syntax=` included) may sit inside a continuation too.
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    pending = pending === '' ? line : `${pending} ${line}`;
    if (pending.endsWith('\\')) {
      pending = pending.slice(0, -1).trim();
      continue;
    }
    const [keyword = '', ...rest] = pending.split(/\s+/);
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' ') });
    pending = '';
  }
  const stages: Array<{ base: string; name: string | undefined; instructions: DockerInstruction[] }> = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((word) => !word.startsWith('--'));
      const as = words.findIndex((word) => word.toUpperCase() === 'AS');
      stages.push({ base: words[0]!, name: as === -1 ? undefined : words[as + 1], instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (stage === undefined) throw new Error(`${instruction.keyword} before the first FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

/** Reads and parses a Dockerfile. */
export function readDockerfile(file: string): DockerStage[] {
  return parseDockerfile(readFileSync(file, 'utf8'));
}

/** The stage called `name`; throws when there is none. */
export function stageNamed(stages: readonly DockerStage[], name: string): DockerStage {
  const stage = stages.find((candidate) => candidate.name === name);
  if (stage === undefined) throw new Error(`no stage named ${name}`);
  return stage;
}

/** The arguments of every `keyword` instruction of a stage, in order. */
export function argsOf(stage: DockerStage, keyword: string): string[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.args);
}

/** The COPY and ADD instructions of a stage, taken apart (shell and JSON forms). */
export function copiesOf(stage: DockerStage): DockerCopy[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === 'COPY' || instruction.keyword === 'ADD')
    .map((instruction) => {
      const words = instruction.args.split(/\s+/);
      const flags = words.filter((word) => word.startsWith('--'));
      const rest = words.slice(flags.length).join(' ');
      const paths = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
      const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
    });
}
