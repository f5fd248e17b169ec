import { readTextFile, type TextFileRead } from './read-text-file.js';

/** A policy larger than this is refused: no sane policy comes near it, a runaway generator might. */
export const MAX_POLICY_BYTES = 1024 * 1024; // 1 MiB

/** Reads a policy file's text, within `MAX_POLICY_BYTES`; a problem is returned, not thrown. */
export function readPolicyText(file: string): Promise<TextFileRead> {
  return readTextFile(file, MAX_POLICY_BYTES);
}
