/**
 * The schema's migrations, applied by node-pg-migrate: plain SQL files in src/migrations, recorded in its
 * table `pgmigrations` (one row per file, named without `.sql`), under its advisory lock.
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { RunnerOption } from 'node-pg-migrate';
import pg from 'pg';

/** Next to the compiled code: the build copies src/migrations to dist/migrations. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** node-pg-migrate's default table, so its own command line works on this database too. */
const TABLE = 'pgmigrations';

const FILE_NAME = /^(\d+)_[a-z0-9_]+\.sql$/;

export interface Migration {
  version: number;
  name: string;
}

/** The versioned SQL files, in order; a stray name stops start-up rather than being skipped. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.sql'));
  const migrations = names.map((name) => {
    const match = FILE_NAME.exec(name);
    if (!match) throw new Error(`migration file ${name} is not named like 001_what_it_does.sql`);
    return { version: Number(match[1]), name };
  });
  return migrations.sort((a, b) => a.version - b.version);
}

export interface MigrateOptions {
  dir?: string;
  /** How long to wait for the server to accept the connection. */
  connectTimeoutMs?: number;
  /** The cap on each statement; 0 (the migrate command's) for none, since a migration may rightly be long. */
  statementTimeoutMs?: number;
}

/** One migration file failed and the run was rolled back; `cause` is the server's error. */
export class MigrationFailedError extends Error {
  override readonly name = 'MigrationFailedError';
}

/** The database's schema is older than this code needs: the migrate command has not run yet. */
export class SchemaTooOldError extends Error {
  override readonly name = 'SchemaTooOldError';
}

/** A connection of its own; a server that goes away must fail the call using it, not crash the process. */
async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The rows of `sql`, or none when its table does not exist (nothing was ever migrated that way). */
async function rowsIfTable<Row extends pg.QueryResultRow>(client: pg.Client, sql: string): Promise<Row[]> {
  try {
    return (await client.query<Row>(sql)).rows;
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return [];
    throw error;
  }
}

/**
 * Checks that the database has every migration this code ships (or newer ones: during a rolling deploy an
 * old back-end serves a schema expanded for the new one). Throws SchemaTooOldError, one line, otherwise.
 */
export async function checkSchema(
  url: string,
  { dir, connectTimeoutMs = 1_000 }: MigrateOptions = {},
): Promise<number> {
  const needed = await loadMigrations(dir);
  const client = await connect({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  try {
    const applied = new Set(
      (await rowsIfTable<{ name: string }>(client, `SELECT name FROM ${TABLE}`)).map((r) => r.name),
    );
    const missing = needed.filter((migration) => !applied.has(migration.name.replace(/\.sql$/, '')));
    const current = Math.max(0, ...[...applied].map((name) => parseInt(name, 10)));
    if (missing.length > 0) {
      throw new SchemaTooOldError(
        `the database schema is at version ${current} but this back-end needs version ` +
          `${Math.max(...needed.map((m) => m.version))} (missing ${missing.map((m) => m.version).join(', ')}): ` +
          'run the migrate command first (node dist/cli/migrate.js)',
      );
    }
    return current;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The runner before node-pg-migrate kept its own table, `schema_migrations` (version, name as `001_x.sql`,
 * applied_at). What it applied is marked as run here, never run again; the table stays for a rollback.
 */
async function adoptSchemaMigrations(options: RunnerOption & { dbClient: pg.Client }): Promise<void> {
  const { runner } = await import('node-pg-migrate');
  const rows = await rowsIfTable<{ name: string }>(
    options.dbClient,
    'SELECT name FROM schema_migrations ORDER BY version',
  );
  // One file at a time under the library's lock; a file already marked is left alone, so this can run every time.
  for (const { name } of rows) await runner({ ...options, fake: true, file: name.replace(/\.sql$/, '') });
}

/**
 * Applies the migrations not yet recorded, all in one transaction, under node-pg-migrate's advisory lock in
 * its waiting mode: replicas starting together take turns, and the later ones find nothing left to do.
 * Answers the file names this call applied.
 */
export async function migrate(
  url: string,
  { dir = MIGRATIONS_DIR, connectTimeoutMs = 1_000, statementTimeoutMs = 60_000 }: MigrateOptions = {},
): Promise<string[]> {
  await loadMigrations(dir);
  // Loaded here, not at start-up: the server only checks the schema, and the library costs ~0.1 s and 10 MB.
  const { runner } = await import('node-pg-migrate');
  // Its own connection, without the pool's short statement timeout: a migration or the lock wait may take longer.
  const client = await connect({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    application_name: 'softy-pinko-migrate',
  });
  const quiet = () => undefined;
  const options = {
    dbClient: client,
    dir,
    migrationsTable: TABLE,
    direction: 'up' as const,
    advisoryLockMode: 'wait' as const,
    // Only the SQL files: the library would also import .js and .ts ones.
    ignorePattern: '(?!.*\\.sql$).*',
    logger: { info: quiet, warn: quiet, error: quiet },
  };
  let running: string | undefined;
  // The library names each migration as it starts it; the last one named is the one that failed.
  const track = (line: string) => (running = /^### MIGRATION (\S+) \(UP\)/.exec(line)?.[1] ?? running);
  try {
    await adoptSchemaMigrations(options);
    const applied = await runner({ ...options, logger: { ...options.logger, info: track } });
    return applied.map((migration) => `${migration.name}.sql`);
  } catch (error) {
    if (running === undefined) throw error;
    throw new MigrationFailedError(`migration ${running}.sql failed: ${(error as Error).message}`, { cause: error });
  } finally {
    // Closing the session also releases the lock if anything above failed.
    await client.end().catch(() => undefined);
  }
}
