/** Debian's Chromium, as the browser suites and `npm run bench:web` launch it. */
import { existsSync } from 'node:fs';

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
