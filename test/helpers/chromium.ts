/**
 * Headless Chromium for the browser tests: where it is (Debian's `chromium`,
 * or `CHROMIUM_PATH`), the flags every test starts it with, and the one rule
 * for when it is missing: the test is skipped with the reason, except in CI,
 * which must run the browser tests, where that is a failure.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Running as root without a sandbox, no GPU, and no background traffic: this
 * machine's network is closed, and Chromium's own connections would be
 * refused many at a time.
 */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/** The `skip` option of a test that needs Chromium (false when it is there). In CI a missing Chromium is a failure. */
export function chromiumSkip(t: { fail(message: string): unknown }): false | string {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI) t.fail(`Chromium not found at ${CHROMIUM}: CI must run the browser tests (apt-get install -y chromium)`);
  return `no Chromium at ${CHROMIUM} (install it with: apt-get install -y chromium; set CHROMIUM_PATH to use another)`;
}

/** Starts headless Chromium with the flags above; close it in a teardown. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}
