import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readPolicyText } from './read-policy-text.js';
import { MAX_POLICY_FILES, ROOT_FILE_NAMES } from './policy-directory-schema.js';
import { isPolicyFileName, type PolicyDirectoryListing } from './policy-directory.js';

/**
 * Whether a policy path names a policy directory (`--policy DIR`): a folder holding a root file. Any other
 * folder is read as a file, and refused as one ("is not a regular file").
 */
export async function isPolicyDirectory(path: string): Promise<boolean> {
  if (!((await stat(path).catch(() => undefined))?.isDirectory() ?? false)) return false;
  const names = await readdir(path).catch(() => [] as string[]);
  return names.some((name) => ROOT_FILE_NAMES.includes(name));
}

/**
 * Reads a policy directory's files: its entries one level down whose names are policy file names
 * (`isPolicyFileName`: no dotfile, so Kubernetes' `..data` machinery is skipped; no policy test file),
 * symlinks followed (a projected volume's files are symlinks into `..data`), each within
 * `MAX_POLICY_BYTES`, at most `MAX_POLICY_FILES` of them, sorted by name.
 */
export async function readPolicyDirectory(folder: string): Promise<PolicyDirectoryListing> {
  let names: string[];
  try {
    names = (await readdir(folder)).filter(isPolicyFileName).sort();
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return { folder, problem: `cannot be read (${code ?? message})` };
  }
  if (names.length > MAX_POLICY_FILES) {
    return { folder, problem: `holds ${names.length} policy files: at most ${MAX_POLICY_FILES} are read` };
  }
  const files = await Promise.all(
    names.map(async (name) => ({ name, read: await readPolicyText(join(folder, name)) })),
  );
  return { folder, files };
}
