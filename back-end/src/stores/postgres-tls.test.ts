/**
 * TLS to PostgreSQL against a real server that has its own CA, as managed databases do: verify-full with the
 * CA file connects; without it, or for another host name, start-up stops with one line naming the setting.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aMessage } from '../testing/messages.js';
import { postgresSkipReason, TestPostgres } from '../testing/postgres.js';
import { startServer } from '../testing/server.js';
import { useTempDir } from '../testing/temp-dir.js';
import { makeTestCa, type TestCa } from '../testing/tls.js';
import { openPostgresStore } from './postgres.js';

const tempDir = useTempDir('postgres-tls', { perFile: true });

describe.skipIf(postgresSkipReason !== '')('TLS to PostgreSQL with a private CA', () => {
  let server: TestPostgres;
  let ca: TestCa;
  let otherCa: TestCa;
  /** A URL on the server, by `host`, with a password that must never be shown. */
  const url = (host: string, query: string) =>
    `postgresql://postgres:hunter2-secret@${host}:${server.port}/postgres?${query}`;

  beforeAll(async () => {
    await mkdir(join(tempDir(), 'ca'));
    await mkdir(join(tempDir(), 'other'));
    ca = await makeTestCa(join(tempDir(), 'ca'), ['localhost']);
    otherCa = await makeTestCa(join(tempDir(), 'other'), ['localhost']);
    server = await TestPostgres.create({ tls: { cert: ca.cert, key: ca.key } });
  }, 120_000);
  afterAll(async () => server?.destroy(), 60_000);

  it('connects with sslmode=verify-full and the CA in sslrootcert, over TLS', async () => {
    const store = await openPostgresStore(url('localhost', `sslmode=verify-full&sslrootcert=${ca.caFile}`));
    try {
      const message = aMessage();
      expect(await store.append(message)).toEqual({ message, created: true });
      await store.ready();
    } finally {
      await store.close();
    }
    const client = new pg.Client({
      connectionString: url('localhost', `sslmode=verify-full&sslrootcert=${ca.caFile}`),
    });
    await client.connect();
    const { rows } = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    await client.end();
    expect(rows).toEqual([{ ssl: true }]);
  });

  it('stops start-up without the CA, in one line that names sslrootcert and not the password', async () => {
    const { code, stderr } = await startServer({ DATABASE_URL: url('localhost', 'sslmode=verify-full') });
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^could not start: PostgreSQL at postgresql:\/\/postgres:\*\*\*@localhost:\d+\/postgres\?sslmode=verify-full cannot be used: TLS: the server's certificate is not signed by a CA this machine trusts \([A-Z_]+\); mount your provider's CA file and add sslrootcert=\/path\/to\/ca\.pem to the database URL \(DATABASE_URL or DATABASE_URL_FILE\)$/,
      ),
    ]);
    expect(stderr).not.toContain('hunter2');
  }, 30_000);

  it('refuses a server whose certificate is for another host name', async () => {
    const failure = await openPostgresStore(url('127.0.0.1', `sslmode=verify-full&sslrootcert=${ca.caFile}`)).catch(
      (error: Error) => error,
    );
    expect((failure as Error).message).toMatch(
      /cannot be used: TLS: the server's certificate is not for host 127\.0\.0\.1 \(ERR_TLS_CERT_ALTNAME_INVALID\); use the host name its certificate names in the database URL/,
    );
  });

  it('refuses a certificate from another CA than the one in sslrootcert, naming that file', async () => {
    const failure = await openPostgresStore(
      url('localhost', `sslmode=verify-full&sslrootcert=${otherCa.caFile}`),
    ).catch((error: Error) => error);
    expect((failure as Error).message).toContain(
      `TLS: the server's certificate is not signed by the CA in sslrootcert=${otherCa.caFile}`,
    );
    expect((failure as Error).message).not.toContain('hunter2');
  });

  it('treats sslmode=require as verify-full, as pg 8 does and docs/stores.md says: the CA and host name are checked', async () => {
    const store = await openPostgresStore(url('localhost', `sslmode=require&sslrootcert=${ca.caFile}`));
    await store.close();
    const noCa = await openPostgresStore(url('localhost', 'sslmode=require')).catch((error: Error) => error);
    expect((noCa as Error).message).toMatch(/TLS: the server's certificate is not signed by a CA this machine trusts/);
    const wrongHost = await openPostgresStore(url('127.0.0.1', `sslmode=require&sslrootcert=${ca.caFile}`)).catch(
      (error: Error) => error,
    );
    expect((wrongHost as Error).message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('encrypts without checking anything with sslmode=no-verify, the explicit opt-out', async () => {
    const client = new pg.Client({ connectionString: url('127.0.0.1', 'sslmode=no-verify') });
    await client.connect();
    const { rows } = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    await client.end();
    expect(rows).toEqual([{ ssl: true }]);
  });
});
