import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** Next to the compiled code: the build copies src/migrations to dist/migrations. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** Any fixed number; every replica takes the same session-level advisory lock around its migrations. */
const MIGRATION_LOCK = 5_252_016;

const FILE_NAME = /^(\d+)_[a-z0-9_]+\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The versioned SQL files, in order; a stray or duplicated version stops start-up rather than being skipped. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.sql'));
  const migrations = await Promise.all(
    names.map(async (name) => {
      const match = FILE_NAME.exec(name);
      if (!match) throw new Error(`migration file ${name} is not named like 001_what_it_does.sql`);
      return { version: Number(match[1]), name, sql: await readFile(`${dir}/${name}`, 'utf8') };
    }),
  );
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((migration, i) => {
    if (i > 0 && migrations[i - 1]?.version === migration.version) {
      throw new Error(`two migration files have version ${migration.version}`);
    }
  });
  return migrations;
}

export interface MigrateOptions {
  dir?: string;
  /** How long to wait for the server to accept the connection. */
  connectTimeoutMs?: number;
  /** The cap on each statement; 0 (the migrate command's) for none, since a migration may rightly be long. */
  statementTimeoutMs?: number;
}

/** One migration file failed and was rolled back; `cause` is the server's error. */
export class MigrationFailedError extends Error {
  override readonly name = 'MigrationFailedError';
}

/** The database's schema is older than this code needs: the migrate command has not run yet. */
export class SchemaTooOldError extends Error {
  override readonly name = 'SchemaTooOldError';
}

/**
 * Checks that the database has every migration this code ships (or newer ones: during a rolling deploy an
 * old back-end serves a schema expanded for the new one). Throws SchemaTooOldError, one line, otherwise.
 */
export async function checkSchema(
  url: string,
  { dir, connectTimeoutMs = 1_000 }: MigrateOptions = {},
): Promise<number> {
  const needed = (await loadMigrations(dir)).map((migration) => migration.version);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client
      .query<{ version: number }>('SELECT version FROM schema_migrations')
      .catch((error: { code?: string }) => {
        // No table at all: nothing was ever migrated.
        if (error.code === '42P01') return { rows: [] };
        throw error;
      });
    const applied = new Set(rows.map((row) => row.version));
    const missing = needed.filter((version) => !applied.has(version));
    const current = Math.max(0, ...applied);
    if (missing.length > 0) {
      throw new SchemaTooOldError(
        `the database schema is at version ${current} but this back-end needs version ${Math.max(...needed)} ` +
          `(missing ${missing.join(', ')}): run the migrate command first (node dist/cli/migrate.js)`,
      );
    }
    return current;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction, under an
 * advisory lock: replicas starting together take turns, and the later ones find nothing left to do.
 * Answers the versions this call applied.
 */
export async function migrate(
  url: string,
  { dir, connectTimeoutMs = 1_000, statementTimeoutMs = 60_000 }: MigrateOptions = {},
): Promise<number[]> {
  const migrations = await loadMigrations(dir);
  // Its own connection, without the pool's short statement timeout: a migration or the lock wait may take longer.
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: connectTimeoutMs,
    statement_timeout: statementTimeoutMs,
    application_name: 'softy-pinko-migrate',
  });
  // A server that goes away mid-migration must fail this call, not crash the process.
  client.on('error', () => undefined);
  await client.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((row) => row.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          migration.version,
          migration.name,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new MigrationFailedError(`migration ${migration.name} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      applied.push(migration.version);
    }
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  } finally {
    // Closing the session also releases the lock if anything above failed.
    await client.end().catch(() => undefined);
  }
  return applied;
}
