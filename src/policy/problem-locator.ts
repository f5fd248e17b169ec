import type { PolicyProblem } from './policy-error.js';
import type { PathSegment } from './policy-document.js';
import { displayYamlPath, type YamlLocations, type YamlPath, type YamlPosition } from './yaml-locations.js';

export type Report = (path: PathSegment[], message: string) => void;

/**
 * Where a policy document's paths are written: one file, or (a policy directory) the root file and the
 * service files it was assembled from. The compiler and the findings locate everything through it.
 */
export interface DocumentLocator {
  /** A problem at `path`, named by its file, line, column and the path as written in that file. */
  at(path: YamlPath, message: string): PolicyProblem;
  lineOf(path: YamlPath): number;
  /** The file `path` is written in, its position there, and the path as written there. */
  place(path: YamlPath): YamlPosition & { readonly file: string; readonly path: YamlPath };
}

/** Turns document paths and offsets into located problems in this file. */
export class Locator implements DocumentLocator {
  constructor(
    private readonly file: string,
    private readonly locations: YamlLocations,
  ) {}

  at(path: YamlPath, message: string): PolicyProblem {
    return { file: this.file, ...this.locations.positionOf(path), path: displayYamlPath(path), message };
  }

  atOffset(offset: number, message: string): PolicyProblem {
    return { file: this.file, ...this.locations.positionOfOffset(offset), path: '', message };
  }

  lineOf(path: YamlPath): number {
    return this.locations.positionOf(path).line;
  }

  place(path: YamlPath): YamlPosition & { readonly file: string; readonly path: YamlPath } {
    return { file: this.file, ...this.locations.positionOf(path), path };
  }
}

/**
 * The locator of a document assembled from several files (a policy directory): `route` says which file's
 * locator holds a path of the assembled document, and what that path is in that file.
 */
export class AssembledLocator implements DocumentLocator {
  constructor(private readonly route: (path: YamlPath) => { locator: Locator; path: YamlPath }) {}

  at(path: YamlPath, message: string): PolicyProblem {
    const { locator, path: own } = this.route(path);
    return locator.at(own, message);
  }

  lineOf(path: YamlPath): number {
    const { locator, path: own } = this.route(path);
    return locator.lineOf(own);
  }

  place(path: YamlPath): YamlPosition & { readonly file: string; readonly path: YamlPath } {
    const { locator, path: own } = this.route(path);
    return locator.place(own);
  }
}
