/**
 * The migrate command: applies the pending migrations of the PostgreSQL database the environment selects
 * (DATABASE_URL or DATABASE_URL_FILE, as the server), under the advisory lock, and exits. It runs before a
 * new back-end starts: a one-shot Compose service, a Kubernetes init container, a step of `npm run deploy`.
 * The server itself only checks the schema and refuses one older than it needs.
 *
 *   node dist/cli/migrate.js          in the back-end image
 *   npm run migrate                   on a checkout
 */
import { pathToFileURL } from 'node:url';
import { redactDatabaseUrl, storeSelectionFromEnv } from '../contact-store.js';
import { connectionProblem } from '../stores/database-url.js';
import { loadMigrations, migrate, MigrationFailedError, type Migration } from '../stores/migrate.js';
import { isTransient } from '../stores/postgres.js';
import type { CliIo } from './messages.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the command; answers the exit code. Every failure is one line on stderr, without the password. */
export async function main(
  io: CliIo,
  { waitMs = 60_000, dir }: { waitMs?: number; dir?: string } = {},
): Promise<number> {
  let url: string;
  try {
    const selection = storeSelectionFromEnv(io.env);
    if (!('databaseUrl' in selection)) {
      io.err(
        'migrate: nothing to do, the file store has no schema (DATABASE_URL or DATABASE_URL_FILE selects PostgreSQL)',
      );
      return 0;
    }
    url = selection.databaseUrl;
  } catch (error) {
    io.err(`migrate: ${(error as Error).message}`);
    return 1;
  }
  const where = redactDatabaseUrl(url);
  let migrations: Migration[];
  try {
    migrations = await loadMigrations(dir);
  } catch (error) {
    io.err(`migrate: ${(error as Error).message}`);
    return 1;
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const options = { statementTimeoutMs: 0, connectTimeoutMs: 3_000, ...(dir ? { dir } : {}) };
      const applied = await migrate(url, options);
      for (const version of applied) {
        io.out(`migrate: applied ${migrations.find((migration) => migration.version === version)?.name}`);
      }
      const latest = Math.max(0, ...migrations.map((migration) => migration.version));
      io.out(`migrate: ${where} is at schema version ${latest}${applied.length === 0 ? ', nothing to do' : ''}`);
      return 0;
    } catch (error) {
      const problem = connectionProblem(error, url);
      // A server still starting (the Compose db, a pod) is waited for; anything else is reported at once.
      const cause = error instanceof MigrationFailedError ? error.cause : error;
      if (isTransient(cause) && !problem && Date.now() < deadline) {
        await sleep(1_000);
        continue;
      }
      io.err(`migrate: PostgreSQL at ${where} cannot be migrated: ${problem ?? (error as Error).message}`);
      return 1;
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const waitSeconds = Number(process.env.MIGRATE_WAIT_SECONDS ?? '60');
  process.exitCode = await main(
    {
      env: process.env,
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    },
    { waitMs: (Number.isFinite(waitSeconds) ? waitSeconds : 60) * 1000 },
  );
}
