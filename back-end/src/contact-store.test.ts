import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONTACT_STORE_PATH,
  contactStorePathFromEnv,
  openContactStore,
  storeSelectionFromEnv,
} from './contact-store.js';
import { postgresSkipReason, usePostgres } from './testing/postgres.js';
import { useTempDir } from './testing/temp-dir.js';

const tempDir = useTempDir('contact-store');
const server = usePostgres();

describe('contactStorePathFromEnv', () => {
  it('uses CONTACT_STORE_PATH when set', () => {
    expect(contactStorePathFromEnv({ CONTACT_STORE_PATH: '/data/contact-messages.jsonl' })).toBe(
      '/data/contact-messages.jsonl',
    );
  });

  it.each([{}, { CONTACT_STORE_PATH: '' }])('falls back to data/contact-messages.jsonl for %j', (env) => {
    expect(contactStorePathFromEnv(env)).toBe(DEFAULT_CONTACT_STORE_PATH);
    expect(DEFAULT_CONTACT_STORE_PATH).toBe('data/contact-messages.jsonl');
  });
});

describe('storeSelectionFromEnv', () => {
  it('keeps the JSON-lines file when no database is named', () => {
    expect(storeSelectionFromEnv({ CONTACT_STORE_PATH: '/data/m.jsonl' })).toEqual({ path: '/data/m.jsonl' });
  });

  it('selects PostgreSQL when DATABASE_URL is set, whatever CONTACT_STORE_PATH says', () => {
    const databaseUrl = 'postgresql://softy:pw@db:5432/softy_pinko';
    expect(storeSelectionFromEnv({ DATABASE_URL: databaseUrl, CONTACT_STORE_PATH: '/data/m.jsonl' })).toEqual({
      databaseUrl,
    });
  });

  it('stops on a bad DATABASE_URL with one line naming it, without the password', () => {
    expect(() => storeSelectionFromEnv({ DATABASE_URL: 'postgresql://softy:hunter2@db' })).toThrow(
      /^DATABASE_URL names no database, got "postgresql:\/\/softy:\*\*\*@db"/,
    );
  });
});

describe('openContactStore', () => {
  it('opens the file store for a path', async () => {
    const store = await openContactStore({ path: join(tempDir(), 'messages.jsonl') });
    expect(store.kind).toBe('file');
    await store.close();
  });

  it.skipIf(postgresSkipReason !== '')('opens the PostgreSQL store for a database URL', async () => {
    const store = await openContactStore({ databaseUrl: await server().createDatabase('select') });
    expect(store.kind).toBe('postgres');
    await store.close();
  });
});
