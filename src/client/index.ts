/**
 * The client library's entry point: what API clients (the browser app in web/, the demo's walkthrough)
 * use to read a 401/403 answer's `WWW-Authenticate` challenges, plan a step-up, and hold a DPoP key.
 * Its modules import only one another and src/contract, so it runs in a browser as well as in Node.
 */
export type { Challenge, ChallengeErrorCode, ChallengeParseError, ParseResult } from './challenge.js';
export {
  accessTokenHash,
  createDpopKey,
  dpopKeyFromPair,
  type DpopKey,
  type DpopKeyPair,
  type DpopProofRequest,
  type DpopPublicJwk,
} from './dpop-key.js';
export {
  findBearerChallenge,
  findTokenChallenge,
  type BearerChallengeView,
  type TokenChallengeView,
  type TokenScheme,
} from './find-bearer-challenge.js';
export { parseWwwAuthenticate, WWW_AUTHENTICATE_LIMITS } from './parse-www-authenticate.js';
export { planStepUp, type ChallengedAnswer, type StepUpPlan, type StepUpRequest } from './step-up-plan.js';
