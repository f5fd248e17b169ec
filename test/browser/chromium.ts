import { accessSync, constants } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium (scripts/install-chromium.sh), or CHROMIUM_BIN. Playwright never downloads one. */
export function chromiumBinary(): string {
  const binary = process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium';
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(
      `Chromium is not installed at ${binary}: run "npm run browser:install" (or set CHROMIUM_BIN)`,
    );
  }
  return binary;
}

/**
 * Launches headless Chromium with a fresh, empty profile (Playwright makes a new user data dir per launch).
 * The flags keep it off the network except for the pages under test: this machine's closed network
 * refuses Chromium's own background connections, and the tests must not depend on them.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumBinary(),
    headless: true,
    chromiumSandbox: false, // the tests run as root in CI, where Chromium's sandbox cannot start
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
