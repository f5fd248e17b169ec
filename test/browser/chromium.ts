import { accessSync, constants } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

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

/**
 * Resolves once `page` has closed, whenever that was: Playwright's `waitForEvent('close')` only sees a close
 * that comes after it is called, and a sign-in pop-up may close by itself before the click that ends it has
 * returned, or before the pop-up event has. Call it before the action that closes the page, or at once when
 * the page was handed over.
 */
export function whenClosed(page: Page, timeoutMs = 30_000): Promise<void> {
  if (page.isClosed()) return Promise.resolve();
  return page.waitForEvent('close', { timeout: timeoutMs }).then(
    () => undefined,
    async (error: unknown) => {
      // Say where it stopped: an error page of the IdP reads differently from a pop-up that hung.
      const shown = page.isClosed()
        ? 'closed meanwhile'
        : `${page.url()}: ${((await page.textContent('body').catch(() => '')) ?? '').trim().slice(0, 300)}`;
      throw new Error(
        `the pop-up did not close within ${timeoutMs} ms (${String(error)}); it shows ${shown}`,
      );
    },
  );
}
