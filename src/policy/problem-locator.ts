import type { PolicyProblem } from './policy-error.js';
import type { PathSegment } from './policy-document.js';
import { displayYamlPath, type YamlLocations, type YamlPath } from './yaml-locations.js';

export type Report = (path: PathSegment[], message: string) => void;

/** Turns document paths and offsets into located problems in this file. */
export class Locator {
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
}
