/** Debian's Chromium driven by playwright-core: no browser download, a fresh profile every launch. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The flags this machine needs: no sandbox as root, and no background calls to Google's hosts. */
export const CHROMIUM_BASE_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What is missing for anything that drives Chromium (the browser suites, `npm run bench:web`), or ''. */
export function chromiumMissing(): string {
  return existsSync(CHROMIUM_PATH)
    ? ''
    : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

/** Why browser tests cannot run here, or '' when they can. Under CI=true they must run. */
export function browserSkipReason(): string {
  const reason = chromiumMissing();
  if (reason === '') return '';
  if (process.env.CI === 'true') throw new Error(`Browser tests cannot run under CI=true: ${reason}`);
  console.warn(`\n!! SKIPPING browser tests: ${reason}\n`);
  return reason;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launchBrowser(options: { javaScriptEnabled?: boolean } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'softy-pinko-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    ...options,
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', ...CHROMIUM_BASE_FLAGS],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
