import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

/*
 * The ways a policy file changes under a running server, as the tools that change it do it.
 */

/** Truncates the file in place and writes the new text into the same inode (`>` in a shell, many editors). */
export async function truncateAndWrite(file: string, text: string): Promise<void> {
  await writeFile(file, text, { flag: 'w' });
}

let renames = 0;

/** Writes a temporary file in the same folder, then renames it over the file (vim, VS Code, sed -i). */
export async function saveByRename(file: string, text: string): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++renames}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, file);
}

/**
 * A folder laid out the way the kubelet mounts a ConfigMap:
 *
 *     policy.yaml -> ..data/policy.yaml
 *     ..data -> ..2026_11_27_v1
 *     ..2026_11_27_v1/policy.yaml
 *
 * `update` publishes new contents the kubelet's way (AtomicWriter): a new timestamped folder, a symlink
 * `..data_tmp` to it, renamed over `..data` in one step, then the old folder removed.
 */
export interface ConfigMapVolume {
  /** `DIR/policy.yaml`, the path the server is given (a symlink). */
  readonly policyFile: string;
  update(text: string): Promise<void>;
}

export async function createConfigMapVolume(dir: string, text: string): Promise<ConfigMapVolume> {
  let generation = 1;
  const folderName = (n: number) => `..2026_11_27_v${n}`;
  await mkdir(path.join(dir, folderName(generation)));
  await writeFile(path.join(dir, folderName(generation), 'policy.yaml'), text);
  await symlink(folderName(generation), path.join(dir, '..data'));
  await symlink(path.join('..data', 'policy.yaml'), path.join(dir, 'policy.yaml'));
  return {
    policyFile: path.join(dir, 'policy.yaml'),
    update: async (next) => {
      const previous = folderName(generation);
      generation += 1;
      await mkdir(path.join(dir, folderName(generation)));
      await writeFile(path.join(dir, folderName(generation), 'policy.yaml'), next);
      await symlink(folderName(generation), path.join(dir, '..data_tmp'));
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      await rm(path.join(dir, previous), { recursive: true, force: true });
    },
  };
}

/**
 * A projected volume of several ConfigMaps, as the kubelet lays it out: every file a symlink `NAME ->
 * ..data/NAME`, `..data` a symlink to a timestamped folder holding every file. Updating one ConfigMap writes a
 * new folder with every file (the others unchanged) and swaps `..data` in one rename.
 */
export interface ProjectedVolume {
  /** The folder the server is given. */
  readonly dir: string;
  /** A new generation: these files changed (undefined: removed from the volume), the others as they were. */
  update(changes: Readonly<Record<string, string | undefined>>): Promise<void>;
}

export async function createProjectedVolume(
  dir: string,
  files: Readonly<Record<string, string>>,
): Promise<ProjectedVolume> {
  let generation = 1;
  let current: Record<string, string> = { ...files };
  const folderName = (n: number) => `..2026_12_08_v${n}`;
  const writeGeneration = async (n: number) => {
    await mkdir(path.join(dir, folderName(n)));
    for (const [name, text] of Object.entries(current))
      await writeFile(path.join(dir, folderName(n), name), text);
  };
  await writeGeneration(generation);
  await symlink(folderName(generation), path.join(dir, '..data'));
  for (const name of Object.keys(current)) await symlink(path.join('..data', name), path.join(dir, name));
  return {
    dir,
    update: async (changes) => {
      const previous = folderName(generation);
      const before = new Set(Object.keys(current));
      current = { ...current };
      for (const [name, text] of Object.entries(changes)) {
        if (text === undefined) delete current[name];
        else current[name] = text;
      }
      generation += 1;
      await writeGeneration(generation);
      await symlink(folderName(generation), path.join(dir, '..data_tmp'));
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      for (const name of Object.keys(current))
        if (!before.has(name)) await symlink(path.join('..data', name), path.join(dir, name));
      for (const name of before) if (!(name in current)) await rm(path.join(dir, name), { force: true });
      await rm(path.join(dir, previous), { recursive: true, force: true });
    },
  };
}
