import { parseArgs, type ParseArgsConfig } from 'node:util';
import { nearestName } from './nearest-name.js';
import { UsageError } from './usage-error.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed flags and positional arguments of one policy tool command. */
export interface OpsArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/**
 * Parses a policy tool command's arguments strictly (unknown flags are usage errors) and checks how many
 * positional arguments it got.
 *
 * @throws UsageError naming what is wrong.
 */
export function parseOpsArgs(
  argv: readonly string[],
  options: Options,
  positionals: { readonly min: number; readonly max: number; readonly name: string },
): OpsArgs {
  let parsed: OpsArgs;
  try {
    const { values, positionals: rest } = parseArgs({
      args: [...argv],
      options,
      strict: true,
      allowPositionals: positionals.max > 0,
    });
    parsed = { values: values as OpsArgs['values'], positionals: rest };
  } catch (error) {
    throw usageErrorFrom(error, options);
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) throw new UsageError(`missing ${positionals.name}`);
  if (count > positionals.max) {
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals.max]}"`);
  }
  return parsed;
}

/** Parsed flags of a command: a string or boolean each, or a list for a flag declared `multiple`. */
export type FlagValues = Readonly<
  Record<string, string | boolean | readonly (string | boolean)[] | undefined>
>;

/**
 * Parses the flags of a command that takes no positional arguments (`serve`, `bank`, ...), strictly:
 * an unknown flag, a missing value or a stray argument is a usage error.
 *
 * @throws UsageError naming the flag (see usageErrorFrom).
 */
export function parseFlags(argv: readonly string[], options: Options): FlagValues {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw usageErrorFrom(error, options);
  }
}

/**
 * node:util's parse error as a usage error. An unknown flag gets a message of its own, with the nearest
 * flag the command takes (`unknown option "--polcy"; did you mean "--policy"?`), or the list of them when
 * none is near: node's own text advises `--` for a positional argument, which is rarely what was meant.
 * Any other parse error keeps node's message, which names the flag.
 */
function usageErrorFrom(error: unknown, options: Options): UsageError {
  const { code, message } = error as { code?: unknown; message: string };
  const typed = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || typed === undefined) return new UsageError(message);
  const known = Object.keys(options).map((name) => `--${name}`);
  const meant = typed.startsWith('--') ? nearestName(typed.slice(2), Object.keys(options)) : undefined;
  const hint =
    meant !== undefined
      ? `; did you mean "--${meant}"?`
      : known.length > 0
        ? ` (options: ${known.join(', ')})`
        : ' (it takes no options)';
  return new UsageError(`unknown option "${typed}"${hint}`);
}
