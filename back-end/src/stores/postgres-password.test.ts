/**
 * A database volume initialised with another password (new secrets, an old volume): the server and the
 * migrate command stop with a line that says so, naming what to do, never the bare authentication error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as migrateCommand } from '../cli/migrate.js';
import { postgresSkipReason, TestPostgres } from '../testing/postgres.js';
import { startServer } from '../testing/server.js';

describe.skipIf(postgresSkipReason !== '')('a database that was created with another password', () => {
  let server: TestPostgres;
  let wrongUrl: string;
  beforeAll(async () => {
    server = await TestPostgres.create({ password: 'the-password-the-volume-was-created-with' });
    wrongUrl = server.url().replace(/:[^:@/]+@/, ':a-new-secret-password@');
  }, 120_000);
  afterAll(async () => server?.destroy(), 60_000);

  const explained =
    /the database refused the password in the database URL \(28P01 .*\)\. PostgreSQL's data volume keeps the password it was first created with: new secrets never reach an existing volume\. Put that password back in the secret, or change it in the database \("Rotate the database password" in docs\/stores\.md\)$/;

  it('stops the back-end at start-up with one line that says so, without the password', async () => {
    const { code, stderr } = await startServer({ DATABASE_URL: wrongUrl });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^could not start: PostgreSQL at \S+ cannot be used: /),
    ]);
    expect(stderr.trim()).toMatch(explained);
    expect(stderr).not.toContain('a-new-secret-password');
  }, 30_000);

  it('stops the migrate command the same way, at once rather than waiting for the server', async () => {
    const err: string[] = [];
    const started = Date.now();
    const code = await migrateCommand({
      env: { DATABASE_URL: wrongUrl, MIGRATE_WAIT_SECONDS: '30' },
      out: () => undefined,
      err: (line) => err.push(line),
    });
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err).toEqual([expect.stringMatching(explained)]);
    expect(err.join('')).not.toContain('a-new-secret-password');
  });

  it('connects with the right password', async () => {
    const code = await migrateCommand({
      env: { DATABASE_URL: server.url() },
      out: () => undefined,
      err: () => undefined,
    });
    expect(code).toBe(0);
  });
});
