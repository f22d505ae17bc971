/**
 * The migrate command: applies the pending migrations of the PostgreSQL database the environment selects
 * (DATABASE_URL or DATABASE_URL_FILE, as the server), under the advisory lock, and exits. It runs before a
 * new back-end starts: a one-shot Compose service, a Kubernetes init container, a step of `npm run deploy`.
 * The server itself only checks the schema and refuses one older than it needs.
 *
 *   node dist/cli/migrate.js          in the back-end image
 *   npm run migrate                   on a checkout
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../config.js';
import { redactDatabaseUrl } from '../contact-store.js';
import { connectionProblem } from '../stores/database-url.js';
import { loadMigrations, migrate, MigrationFailedError } from '../stores/migrate.js';
import { isTransient } from '../stores/postgres.js';
import type { CliIo } from './messages.js';

/** Runs the command; answers the exit code. Every failure is one line on stderr, without the password. */
export async function main(io: CliIo, { dir }: { dir?: string } = {}): Promise<number> {
  let url: string;
  let latest: number;
  let waitMs: number;
  try {
    const config = loadConfig(io.env);
    if (!('databaseUrl' in config.store)) {
      io.err(
        'migrate: nothing to do, the file store has no schema (DATABASE_URL or DATABASE_URL_FILE selects PostgreSQL)',
      );
      return 0;
    }
    url = config.store.databaseUrl;
    waitMs = config.migrateWaitMs;
    latest = Math.max(0, ...(await loadMigrations(dir)).map((migration) => migration.version));
  } catch (error) {
    io.err(`migrate: ${(error as Error).message}`);
    return 1;
  }
  const where = redactDatabaseUrl(url);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const applied = await migrate(url, { statementTimeoutMs: 0, connectTimeoutMs: 3_000, ...(dir ? { dir } : {}) });
      for (const name of applied) io.out(`migrate: applied ${name}`);
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
  process.exitCode = await main({
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}
