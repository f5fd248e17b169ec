import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command, CommandTable } from '../command/command.js';

/**
 * The demo's command table (`bank`, `dev-token`, `dev-idp`, `demo-client`), a guest of the sidecar.
 *
 * The specifier is computed at run time, never written as a string literal, on purpose: TypeScript (and
 * any bundler or dependency checker) follows literal imports, so a literal here would pull the demo into
 * the sidecar's build (`tsconfig.sidecar.json` refuses to compile with it, TS6307) and into its image.
 * The sidecar image ships without `dist/demo/`; the demo image and a checkout have it.
 */
const DEMO_COMMANDS_URL = new URL('../demo/demo-commands.js', import.meta.url);

/**
 * The guest command tables that are installed: the demo's when its module is present, none when it is
 * absent (the sidecar image). A guest module that is present but fails to load is an error, not an
 * absence: it is thrown.
 */
export async function loadGuestCommands(): Promise<readonly CommandTable[]> {
  if (!existsSync(fileURLToPath(DEMO_COMMANDS_URL))) return [];
  const module = (await import(DEMO_COMMANDS_URL.href)) as { readonly commandTable?: unknown };
  if (!isCommandTable(module.commandTable)) {
    throw new Error(`${DEMO_COMMANDS_URL.href} does not export a commandTable { title, commands }`);
  }
  return [module.commandTable];
}

function isCommandTable(value: unknown): value is CommandTable {
  if (typeof value !== 'object' || value === null) return false;
  const { title, commands } = value as { title?: unknown; commands?: unknown };
  return typeof title === 'string' && Array.isArray(commands) && commands.every(isCommand);
}

function isCommand(value: unknown): value is Command {
  if (typeof value !== 'object' || value === null) return false;
  const { name, usage, summary, run } = value as Record<string, unknown>;
  return (
    typeof name === 'string' && Array.isArray(usage) && Array.isArray(summary) && typeof run === 'function'
  );
}
