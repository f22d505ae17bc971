import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresSkipReason, usePostgres } from './postgres.js';

const server = usePostgres();

async function query(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

describe.skipIf(postgresSkipReason !== '')('the test PostgreSQL server', () => {
  it('answers on a loopback port, run by a non-root user', async () => {
    const { rows } = await query(server().url(), "SELECT current_setting('listen_addresses') AS listen");
    expect(rows[0].listen).toBe('127.0.0.1');
    // The data directory belongs to whoever runs the server; PostgreSQL itself refuses root.
    expect((await stat(join(server().dir, 'data'))).uid).not.toBe(0);
  });

  it('gives each caller a fresh, empty database', async () => {
    const first = await server().createDatabase();
    const second = await server().createDatabase();
    expect(first).not.toBe(second);
    await query(first, 'CREATE TABLE t (x int)');
    const { rows } = await query(second, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 't'");
    expect(rows[0].n).toBe(0);
  });

  it('stops (connections are refused) and starts again on the same port', async () => {
    const url = server().url();
    await server().stop();
    await expect(query(url, 'SELECT 1')).rejects.toThrow();
    await server().start();
    expect((await query(url, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
