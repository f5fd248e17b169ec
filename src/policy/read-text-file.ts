import { readFile, stat } from 'node:fs/promises';

/** A text file's content, or in a few words why it cannot be used. */
export type TextFileRead = { readonly text: string } | { readonly problem: string };

/**
 * Reads a UTF-8 text file of at most `maxBytes`, or says in a few words why it cannot be used. The callers
 * (policy and policy test files) turn the problem into their own located, coded error.
 */
export async function readTextFile(file: string, maxBytes: number): Promise<TextFileRead> {
  let bytes: Buffer;
  try {
    const info = await stat(file);
    if (!info.isFile()) return { problem: 'is not a regular file' };
    if (info.size > maxBytes) return { problem: `is larger than ${maxBytes} bytes` };
    bytes = await readFile(file);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return { problem: `cannot be read (${code ?? message})` };
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { problem: 'is not valid UTF-8' };
  }
}
