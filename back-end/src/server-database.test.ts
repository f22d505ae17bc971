/** Start-up with a database URL: a bad one, or a database that refuses us, stops the process with one line. */
import { expect, it } from 'vitest';
import { postgresSkipReason, usePostgres } from './testing/postgres.js';
import { startServer } from './testing/server.js';

const server = usePostgres();

it('refuses to start on a bad DATABASE_URL with one line that names it, not the password', async () => {
  const { code, stderr } = await startServer({ DATABASE_URL: 'postgresql://softy:hunter2-secret@db:5432' });
  expect(code).toBe(1);
  expect(stderr).toMatch(/^could not start: DATABASE_URL names no database, got "postgresql:\/\/softy:\*\*\*@db:5432"/);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toContain('hunter2');
}, 30_000);

it.skipIf(postgresSkipReason !== '')(
  'refuses to start on a database that does not exist, in one line without the password',
  async () => {
    const url = `postgresql://postgres:hunter2-secret@127.0.0.1:${server().port}/no_such_database`;
    const { code, stderr } = await startServer({ DATABASE_URL: url });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^could not start: PostgreSQL at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/no_such_database /,
    );
    expect(stderr).toContain('does not exist');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toContain('hunter2');
  },
  30_000,
);
