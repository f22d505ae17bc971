/**
 * Where accepted contact messages are kept. One interface, two stores: the JSON-lines file (the default,
 * needing nothing else, for one machine) and PostgreSQL (selected by DATABASE_URL or DATABASE_URL_FILE,
 * for replicas on many machines). The implementations live in stores/.
 */
import { databaseUrlFromEnv } from './stores/database-url.js';
import { createFileStore } from './stores/file.js';
import { openPostgresStore, type PostgresStoreOptions } from './stores/postgres.js';
import type { ContactStore } from './stores/types.js';

export { checkDatabaseUrl, databaseUrlFromEnv, redactDatabaseUrl } from './stores/database-url.js';
export { parseContactMessages, readContactMessages } from './stores/file.js';
export { StoreUnavailableError, type AppendResult, type ContactMessage, type ContactStore } from './stores/types.js';

/** Where messages go when `CONTACT_STORE_PATH` is not set: next to a local run, under its cwd. */
export const DEFAULT_CONTACT_STORE_PATH = 'data/contact-messages.jsonl';

/** An empty value counts as unset, so `CONTACT_STORE_PATH=` in a Compose file cannot point at the cwd itself. */
export function contactStorePathFromEnv(env: NodeJS.ProcessEnv): string {
  return env.CONTACT_STORE_PATH || DEFAULT_CONTACT_STORE_PATH;
}

/** Which store to use: PostgreSQL when a database URL is given, the JSON-lines file otherwise. */
export type StoreSelection = { databaseUrl: string } | { path: string };

/** The selection the environment asks for; throws one clear line for a bad DATABASE_URL(_FILE). */
export function storeSelectionFromEnv(env: NodeJS.ProcessEnv): StoreSelection {
  const databaseUrl = databaseUrlFromEnv(env);
  return databaseUrl ? { databaseUrl } : { path: contactStorePathFromEnv(env) };
}

/** Opens the selected store; for PostgreSQL this applies the migrations (see stores/postgres.ts). */
export async function openContactStore(
  selection: StoreSelection,
  options: PostgresStoreOptions = {},
): Promise<ContactStore> {
  return 'databaseUrl' in selection
    ? openPostgresStore(selection.databaseUrl, options)
    : createFileStore(selection.path, options.warn);
}
