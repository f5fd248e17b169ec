import { ACR_MFA, ACR_PASSWORD, AMR_MFA, AMR_PASSWORD } from './protocol-values.js';

/** How and when the user logged in: the `acr`, `amr` and `auth_time` claims of a token. Development only. */
export interface AuthenticationContext {
  readonly acr: string;
  readonly amr: readonly string[];
  /** Seconds since the epoch. */
  readonly authTimeSeconds: number;
}

/**
 * The context of a login completed at `nowMs`: with a password only, or with a password and then a second
 * factor (whose time is the login time: the API asked for a fresh strong login). Development only.
 */
export function authenticatedNow(login: 'password' | 'mfa', nowMs: number): AuthenticationContext {
  const authTimeSeconds = Math.floor(nowMs / 1000);
  return login === 'mfa'
    ? { acr: ACR_MFA, amr: AMR_MFA, authTimeSeconds }
    : { acr: ACR_PASSWORD, amr: AMR_PASSWORD, authTimeSeconds };
}
