import type { Credentials } from './credentials.js';

/** The facts about one HTTP request that authorisation looks at. */
export interface RequestFacts<Presented> {
  readonly method: string;
  /** The request target as received (origin-form, may include a query string). */
  readonly target: string;
  readonly credentials: Credentials<Presented>;
}
