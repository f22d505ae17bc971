/** The contact counters with the PostgreSQL store, against a real server: labelled postgres, a repeat not counted. */
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { postgresSkipReason, usePostgres } from '../testing/postgres.js';

const server = usePostgres();
const valid = { name: 'Ada Lovelace', email: 'ada@example.com', message: 'Counted, please.' };

describe.skipIf(postgresSkipReason !== '')('the contact counters with the PostgreSQL store', () => {
  let app: FastifyInstance;
  beforeEach(async () => {
    app = await buildApp({ store: { databaseUrl: await server().createDatabase('metrics') } });
  });
  afterEach(() => app.close());

  const post = (key: string) =>
    app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify(valid),
    });
  const counter = async (name: string) =>
    (await app.metrics.text()).split('\n').find((line) => line.startsWith(`${name}{store="postgres"} `));

  it('counts a stored message once, however often its Idempotency-Key is repeated', async () => {
    expect((await post('key-1')).statusCode).toBe(201);
    expect((await post('key-1')).statusCode).toBe(201);
    expect(await counter('contact_messages_stored_total')).toBe('contact_messages_stored_total{store="postgres"} 1');
    expect(await counter('contact_messages_failed_total')).toBeUndefined();
  });

  it('counts a message the database could not take as failed', async () => {
    await server().stop();
    try {
      expect((await post('key-2')).statusCode).toBe(503);
    } finally {
      await server().start();
    }
    expect(await counter('contact_messages_failed_total')).toBe('contact_messages_failed_total{store="postgres"} 1');
    expect(await counter('contact_messages_stored_total')).toBeUndefined();
  });
});
