import { createInterface } from 'node:readline/promises';

/**
 * Where the demo client gets the one-time code of a pending MFA transaction:
 * - `prompt`: asks the person at the terminal for the code the development identity provider printed;
 * - `auto`: reads it from the provider's simulated authenticator (`GET /dev/authenticator`, loopback only),
 *   standing in for the user's phone so the demo and the tests can run unattended.
 */
export function otpSource(mode: 'auto' | 'prompt', issuer: string): (mfaToken: string) => Promise<string> {
  if (mode === 'prompt') {
    return async () => {
      const terminal = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return (await terminal.question('   Enter the 6-digit code the identity provider printed: ')).trim();
      } finally {
        terminal.close();
      }
    };
  }
  return async (mfaToken) => {
    const url = new URL('/dev/authenticator', issuer);
    url.searchParams.set('mfa_token', mfaToken);
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    const body = (await response.json()) as { otp?: unknown };
    if (!response.ok || typeof body.otp !== 'string') {
      throw new Error(`the simulated authenticator answered ${response.status}`);
    }
    process.stdout.write(`   (simulated authenticator app: code ${body.otp})\n`);
    return body.otp;
  };
}
