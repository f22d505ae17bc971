/** Debian's Chromium driven by playwright-core: no browser download, a fresh profile every launch. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM_BASE_FLAGS, CHROMIUM_PATH, chromiumMissing } from '../scripts/lib/chromium.js';

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

/** Fills the page's contact form as a visitor would, by its labels, and sends it. */
export async function sendContactForm(page: Page, name: string, message: string): Promise<void> {
  await page.getByLabel(/name/i).first().fill(name);
  await page.getByLabel(/email/i).first().fill('browser@example.com');
  await page
    .getByLabel(/message/i)
    .first()
    .fill(message);
  await page.locator('form[action="/api/contact"] [type="submit"]').click();
}
