import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The demo accounts of the development identity provider. Development only: the passwords are public,
 * printed in docs/demo.md and in these comments, and exist so the step-up demo can log in.
 *
 * | username | password         |
 * |----------|------------------|
 * | alice    | `alice-password` |
 * | bob      | `bob-password`   |
 */
export const DEMO_USERS: ReadonlyMap<string, string> = new Map([
  ['alice', 'alice-password'],
  ['bob', 'bob-password'],
]);

// Compared against when the username is unknown, so an unknown user costs the same as a wrong password.
const NOBODY_DIGEST = digest('no such user: this value is never a password');

/**
 * Checks a demo login. The comparison takes the same time whichever byte differs and whether or not the
 * user exists (both sides are hashed to equal length, then compared with `timingSafeEqual`), so neither
 * the answer nor its timing tells which part was wrong. Development only.
 *
 * @returns the username when the password is right, otherwise undefined.
 */
export function authenticateDemoUser(username: string, password: string): string | undefined {
  const expected = DEMO_USERS.get(username);
  const matches = timingSafeEqual(
    digest(password),
    expected === undefined ? NOBODY_DIGEST : digest(expected),
  );
  return matches && expected !== undefined ? username : undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
