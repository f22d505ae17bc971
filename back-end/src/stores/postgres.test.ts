/** What only the PostgreSQL store does: migrations, a small pool, and riding out a server that goes away. */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresSkipReason, query, usePostgres } from '../testing/postgres.js';
import { useTempDir } from '../testing/temp-dir.js';
import { loadMigrations, MIGRATIONS_DIR } from './migrate.js';
import { openPostgresStore, type PostgresStoreOptions } from './postgres.js';
import { StoreUnavailableError, type ContactStore } from './types.js';
import { aMessage } from '../testing/messages.js';

const tempDir = useTempDir('postgres-store');
const server = usePostgres();

const opened: ContactStore[] = [];
const warnings: string[] = [];
async function open(url: string, options: PostgresStoreOptions = {}): Promise<ContactStore> {
  const store = await openPostgresStore(url, { warn: (line) => warnings.push(line), ...options });
  opened.push(store);
  return store;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  warnings.length = 0;
});

/** How long `work` takes to settle, and how. */
async function timed(work: Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  let error: unknown;
  await work.catch((caught: unknown) => (error = caught));
  return { ms: performance.now() - started, error };
}

describe.skipIf(postgresSkipReason !== '')('the PostgreSQL store', () => {
  it('migrates once when 8 instances start at once, each recording nothing twice', async () => {
    const url = await server().createDatabase('race');
    const stores = await Promise.all(Array.from({ length: 8 }, () => open(url)));
    const names = (await loadMigrations()).map((migration) => migration.name.replace(/\.sql$/, ''));
    const applied = await query<{ name: string }>(url, 'SELECT name FROM pgmigrations ORDER BY id');
    expect(applied.map((row) => row.name)).toEqual(names);
    await Promise.all(stores.map((store) => store.append(aMessage())));
    expect(await stores[0]!.list()).toHaveLength(8);
  });

  it('applies only the versions not recorded yet, in order', async () => {
    const url = await server().createDatabase('versions');
    const dir = join(tempDir(), 'migrations');
    await mkdir(dir);
    await writeFile(join(dir, '001_first.sql'), 'CREATE TABLE contact_messages (id uuid PRIMARY KEY);');
    await (await open(url, { migrationsDir: dir })).close();
    await writeFile(join(dir, '002_second.sql'), 'ALTER TABLE contact_messages ADD COLUMN note text;');
    await writeFile(join(dir, '010_third.sql'), 'ALTER TABLE contact_messages ADD COLUMN later text;');
    await (await open(url, { migrationsDir: dir })).close();
    const applied = await query<{ name: string }>(url, 'SELECT name FROM pgmigrations ORDER BY run_on, id');
    expect(applied.map((row) => row.name)).toEqual(['001_first', '002_second', '010_third']);
  });

  it('ships its migrations as numbered SQL files', async () => {
    const migrations = await loadMigrations(MIGRATIONS_DIR);
    expect(migrations[0]).toMatchObject({ version: 1, name: '001_contact_messages.sql' });
  });

  it('never stores an id twice, so an import can run again', async () => {
    const store = await open(await server().createDatabase('import'));
    const message = aMessage();
    expect((await store.append(message)).created).toBe(true);
    expect(await store.append({ ...message })).toEqual({ message, created: false });
    expect(await store.list()).toEqual([message]);
  });

  it('keeps at most 5 connections, however many appends run at once', async () => {
    const url = await server().createDatabase('pool');
    const store = await open(url);
    await Promise.all(Array.from({ length: 60 }, () => store.append(aMessage())));
    const [row] = await query<{ n: number }>(
      url,
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'softy-pinko-back-end'",
    );
    expect(row!.n).toBeGreaterThan(0);
    expect(row!.n).toBeLessThanOrEqual(5);
  });

  it('refuses to start on a database it cannot use, in one line without the password', async () => {
    const url = `postgresql://postgres:s3cret-pw@127.0.0.1:${server().port}/no_such_database`;
    const failure = await openPostgresStore(url, { warn: () => undefined }).catch((error: Error) => error);
    expect(failure).toBeInstanceOf(Error);
    const { message } = failure as Error;
    expect(message).toMatch(/^PostgreSQL at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/no_such_database /);
    expect(message).toContain('does not exist');
    expect(message).not.toContain('s3cret-pw');
    expect(message).not.toContain('\n');
  });

  describe('while the server is down', () => {
    it('fails appends and readiness as unavailable within 2 s, then recovers by itself', async () => {
      const store = await open(await server().createDatabase('down'));
      const before = aMessage();
      await store.append(before);
      await server().stop();
      try {
        for (const work of [store.append(aMessage()), store.ready()]) {
          const { ms, error } = await timed(work);
          expect(error).toBeInstanceOf(StoreUnavailableError);
          expect(ms).toBeLessThan(2_000);
        }
      } finally {
        await server().start();
      }
      const after = aMessage();
      await vi_waitFor(() => store.append(after));
      await expect(store.ready()).resolves.toBeUndefined();
      expect(await store.list()).toEqual([before, after]);
    });

    it('tries again within its deadline, so a server back by then costs the visitor nothing', async () => {
      const store = await open(await server().createDatabase('blip'), { deadlineMs: 15_000 });
      await store.append(aMessage());
      await server().stop();
      const message = aMessage({ idempotencyKey: randomUUID() });
      // Refused while the server is down: tried again every 100 ms, not answered unavailable at once.
      const appending = timed(store.append(message));
      await server().start();
      const { error } = await appending;
      expect(error).toBeUndefined();
      expect((await store.list()).filter((stored) => stored.id === message.id)).toEqual([message]);
    });

    it('starts anyway, answering unavailable, and migrates once the server is back', async () => {
      const url = await server().createDatabase('late');
      await server().stop();
      let store: ContactStore;
      try {
        store = await open(url);
        expect(warnings.join('\n')).toMatch(/is not reachable yet/);
        await expect(store.append(aMessage())).rejects.toThrow(StoreUnavailableError);
      } finally {
        await server().start();
      }
      const message = aMessage({ idempotencyKey: randomUUID() });
      await vi_waitFor(() => store.append(message));
      expect(await store.list()).toEqual([message]);
    });
  });

  describe('with a server that accepts connections but never answers', () => {
    let silent: Server;
    const sockets: Socket[] = [];
    afterEach(async () => {
      sockets.splice(0).forEach((socket) => socket.destroy());
      await new Promise((resolve) => silent.close(resolve));
    });

    it('opens within ~1 s, and fails each append and readiness check within 2 s', async () => {
      silent = createServer((socket) => sockets.push(socket));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const { port } = silent.address() as AddressInfo;
      const opening = timed(open(`postgresql://postgres@127.0.0.1:${port}/softy`));
      const { ms: openMs, error: openError } = await opening;
      expect(openError).toBeUndefined();
      expect(openMs).toBeLessThan(1_500);
      const store = opened[0]!;
      const results = await Promise.all([store.append(aMessage()), store.append(aMessage()), store.ready()].map(timed));
      for (const { ms, error } of results) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(ms).toBeLessThan(2_000);
      }
    });
  });
});

/** Retries `work` until it resolves (a restarted server takes a moment to accept connections), for up to 10 s. */
async function vi_waitFor<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await work();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
