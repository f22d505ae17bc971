/**
 * Migrations as their own step: the migrate command applies them and exits, the server refuses a schema
 * older than it needs, and an old back-end keeps serving while a new migration is applied and the new
 * back-end rolls in (an expand change: old and new code both work on the new schema).
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { MIGRATIONS_DIR } from '../stores/migrate.js';
import { postgresSkipReason, query, usePostgres } from '../testing/postgres.js';
import { startServer } from '../testing/server.js';
import { useTempDir } from '../testing/temp-dir.js';
import { main } from './migrate.js';

const tempDir = useTempDir('migrate-cli');
const server = usePostgres();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function migrateCommand(env: NodeJS.ProcessEnv, dir?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    { env: { MIGRATE_WAIT_SECONDS: '2', ...env }, out: (line) => out.push(line), err: (line) => err.push(line) },
    dir ? { dir } : {},
  );
  return { code, out, err };
}

/** The shipped migrations, plus `extra` files: the next release's folder. */
async function migrationsWith(extra: Record<string, string>): Promise<string> {
  const dir = join(tempDir(), `migrations-${Object.keys(extra).length}`);
  await mkdir(dir);
  await copyFile(join(MIGRATIONS_DIR, '001_contact_messages.sql'), join(dir, '001_contact_messages.sql'));
  for (const [name, sql] of Object.entries(extra)) await writeFile(join(dir, name), sql);
  return dir;
}

describe.skipIf(postgresSkipReason !== '')('the migrate command', () => {
  it('applies the pending migrations and exits; run again, it has nothing to do', async () => {
    const url = await server().createDatabase('migrate_cli');
    expect(await migrateCommand({ DATABASE_URL: url })).toEqual({
      code: 0,
      out: ['migrate: applied 001_contact_messages.sql', expect.stringMatching(/is at schema version 1$/)],
      err: [],
    });
    expect((await migrateCommand({ DATABASE_URL: url })).out).toEqual([
      expect.stringMatching(/is at schema version 1, nothing to do$/),
    ]);
    expect(await query(url, 'SELECT name FROM pgmigrations')).toEqual([{ name: '001_contact_messages' }]);
  });

  it('runs migrations with no statement timeout, so a long one is never cut off', async () => {
    const url = await server().createDatabase('migrate_long');
    const dir = await migrationsWith({
      '002_slow.sql':
        "SELECT pg_sleep(2); CREATE TABLE seen AS SELECT current_setting('statement_timeout') AS timeout;",
    });
    expect((await migrateCommand({ DATABASE_URL: url }, dir)).code).toBe(0);
    // Longer than the server pool's 0.8 s cap, and no cap at all: 0.
    expect(await query(url, 'SELECT timeout FROM seen')).toEqual([{ timeout: '0' }]);
  });

  it('fails in one line naming the migration, without the password', async () => {
    const url = (await server().createDatabase('migrate_bad')).replace('postgres@', 'postgres:hunter2-secret@');
    const dir = await migrationsWith({ '002_broken.sql': 'ALTER TABLE no_such_table ADD COLUMN x text;' });
    const { code, err } = await migrateCommand({ DATABASE_URL: url }, dir);
    expect(code).toBe(1);
    expect(err).toEqual([
      expect.stringMatching(
        /^migrate: PostgreSQL at .*:\*\*\*@.* cannot be migrated: migration 002_broken\.sql failed: /,
      ),
    ]);
    expect(err.join('')).not.toContain('hunter2');
  });

  it('has nothing to do for the file store', async () => {
    expect(await migrateCommand({ CONTACT_STORE_PATH: join(tempDir(), 'x.jsonl') })).toMatchObject({
      code: 0,
      err: [expect.stringMatching(/^migrate: nothing to do, the file store has no schema/)],
    });
  });
});

/** A database as the runner before node-pg-migrate left it: 001 applied and recorded in its own table. */
async function migratedByTheOldRunner(name: string): Promise<string> {
  const url = await server().createDatabase(name);
  const sql = await readFile(join(MIGRATIONS_DIR, '001_contact_messages.sql'), 'utf8');
  await query(
    url,
    `CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now());
     ${sql}
     INSERT INTO schema_migrations (version, name) VALUES (1, '001_contact_messages.sql');
     INSERT INTO contact_messages (id, received_at, name, email, message)
       VALUES ('${randomUUID()}', now(), 'Before', 'before@example.com', 'kept across the upgrade');`,
  );
  return url;
}

describe.skipIf(postgresSkipReason !== '')('a database the old runner migrated', () => {
  it('is adopted without running its migrations again, and the old table stays for a rollback', async () => {
    const url = await migratedByTheOldRunner('adopt');
    expect(await migrateCommand({ DATABASE_URL: url })).toEqual({
      code: 0,
      out: [expect.stringMatching(/is at schema version 1, nothing to do$/)],
      err: [],
    });
    expect(await query(url, 'SELECT name FROM pgmigrations')).toEqual([{ name: '001_contact_messages' }]);
    expect(await query(url, 'SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
    expect(await query(url, 'SELECT message FROM contact_messages')).toEqual([{ message: 'kept across the upgrade' }]);
    // The server accepts the adopted schema, and the next release's migration is the only one applied.
    await (await buildApp({ store: { databaseUrl: url }, schema: 'check' })).close();
    const dir = await migrationsWith({ '002_source.sql': 'ALTER TABLE contact_messages ADD COLUMN source text;' });
    expect((await migrateCommand({ DATABASE_URL: url }, dir)).out).toEqual([
      'migrate: applied 002_source.sql',
      expect.stringMatching(/is at schema version 2$/),
    ]);
  });

  it('is adopted once when 4 migrate commands start at once', async () => {
    const url = await migratedByTheOldRunner('adopt_race');
    const runs = await Promise.all(Array.from({ length: 4 }, () => migrateCommand({ DATABASE_URL: url })));
    expect(runs.map((run) => [run.code, run.err])).toEqual(Array.from({ length: 4 }, () => [0, []]));
    expect(await query(url, 'SELECT name FROM pgmigrations')).toEqual([{ name: '001_contact_messages' }]);
  });
});

describe.skipIf(postgresSkipReason !== '')('the server and the schema', () => {
  it('refuses to start on a schema older than it needs, in one line naming the migrate command', async () => {
    const url = await server().createDatabase('too_old');
    const { code, stderr } = await startServer({ DATABASE_URL: url });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^could not start: PostgreSQL at \S+ cannot be used: the database schema is at version 0 but this back-end needs version 1 \(missing 1\): run the migrate command first \(node dist\/cli\/migrate\.js\)$/,
      ),
    ]);
    // Nothing was migrated behind the operator's back.
    expect(await query(url, "SELECT to_regclass('contact_messages') AS t")).toEqual([{ t: null }]);
  }, 30_000);

  it('keeps an old back-end serving with 0 failed requests while a migration is applied and a new one rolls in', async () => {
    const url = await server().createDatabase('rolling');
    const oldDir = await migrationsWith({});
    // An expand change: a new nullable column the old code never names.
    const newDir = await migrationsWith({
      '002_contact_messages_source.sql': 'ALTER TABLE contact_messages ADD COLUMN source text;',
    });
    expect((await migrateCommand({ DATABASE_URL: url }, oldDir)).code).toBe(0);

    const start = async (migrationsDir: string) => {
      const app = await buildApp({ store: { databaseUrl: url }, schema: 'check', migrationsDir });
      await app.listen({ host: '127.0.0.1', port: 0 });
      return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/contact` };
    };
    // The new release refuses the old schema: the migration must come first.
    await expect(buildApp({ store: { databaseUrl: url }, schema: 'check', migrationsDir: newDir })).rejects.toThrow(
      /schema is at version 1 but this back-end needs version 2/,
    );
    const old = await start(oldDir);

    // The load balancer's view: the back-ends it sends to right now.
    let serving: { app: FastifyInstance; url: string }[] = [old];
    const statuses = new Map<number | string, number>();
    const acknowledged = new Map<string, string>();
    let stop = false;
    let sent = 0;
    const inFlight = new Set<Promise<unknown>>();
    const load = (async () => {
      while (!stop) {
        const target = serving[sent % serving.length]!;
        sent += 1;
        const key = randomUUID();
        const request = fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({ name: 'Rolling', email: 'roll@example.com', message: `during the rollout ${sent}` }),
        })
          .then(async (response) => {
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            if (response.status === 201) acknowledged.set(key, ((await response.json()) as { id: string }).id);
          })
          .catch((error: Error) => statuses.set(error.message, (statuses.get(error.message) ?? 0) + 1));
        inFlight.add(request);
        void request.finally(() => inFlight.delete(request));
        await sleep(10); // ~100 requests/s
      }
    })();

    await sleep(1_000);
    const migrated = await migrateCommand({ DATABASE_URL: url }, newDir);
    expect(migrated.out[0]).toBe('migrate: applied 002_contact_messages_source.sql');
    await sleep(1_000); // the old back-end alone, on the expanded schema
    const next = await start(newDir);
    serving = [old, next];
    await sleep(1_000);
    // The old one leaves the rotation, finishes what it has, and stops.
    serving = [next];
    await sleep(200);
    await old.app.close();
    await sleep(1_000);
    stop = true;
    await load;
    await Promise.all(inFlight);
    await next.app.close();

    console.log(`[rolling migration] ${sent} POSTs: ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(Object.fromEntries(statuses)).toEqual({ 201: sent });
    expect(sent).toBeGreaterThan(200);
    const stored = await query<{ key: string; id: string }>(
      url,
      'SELECT idempotency_key AS key, id FROM contact_messages',
    );
    expect(new Map(stored.map((row) => [row.key, row.id]))).toEqual(acknowledged);
  }, 60_000);
});
