/**
 * The API with the PostgreSQL store, through app.inject() against a real server: stored after COMMIT, a
 * repeated Idempotency-Key stored once, and a database that goes away costs 503s (never 500s) until it is back.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';
import { postgresSkipReason, usePostgres } from './testing/postgres.js';

const server = usePostgres();
const valid = { name: 'Ada Lovelace', email: 'ada@example.com', message: 'I would like a demo, please.' };

let app: FastifyInstance;
let url: string;

async function rows(query: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(query, values)).rows;
  } finally {
    await client.end();
  }
}

const post = (headers: Record<string, string> = {}, payload: unknown = valid) =>
  app.inject({
    method: 'POST',
    url: '/api/contact',
    headers: { 'content-type': 'application/json', ...headers },
    payload: JSON.stringify(payload),
  });

describe.skipIf(postgresSkipReason !== '')('POST /api/contact with the PostgreSQL store', () => {
  beforeEach(async () => {
    url = await server().createDatabase('api');
    app = await buildApp({ store: { databaseUrl: url } });
  });
  afterEach(() => app.close());

  it('answers 201 once the row is committed, with its id and time', async () => {
    const res = await post();
    expect(res.statusCode).toBe(201);
    const answer = res.json<{ id: string; receivedAt: string }>();
    // Another connection sees it at once: the INSERT had committed before the answer.
    const stored = await rows('SELECT id, received_at, name, email, message, idempotency_key FROM contact_messages');
    expect(stored).toEqual([
      { id: answer.id, received_at: new Date(answer.receivedAt), ...valid, idempotency_key: null },
    ]);
  });

  it('answers a repeated Idempotency-Key with the same 201 body, storing one row', async () => {
    const key = randomUUID();
    const first = await post({ 'idempotency-key': key });
    const again = await post({ 'idempotency-key': key }, { ...valid, message: 'Sent twice.' });
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.body).toBe(first.body);
    expect(await rows('SELECT idempotency_key, message FROM contact_messages')).toEqual([
      { idempotency_key: key, message: valid.message },
    ]);
  });

  it('stores one row for a key sent 10 times at once', async () => {
    const key = randomUUID();
    const answers = await Promise.all(Array.from({ length: 10 }, () => post({ 'idempotency-key': key })));
    expect(new Set(answers.map((res) => `${res.statusCode} ${res.body}`)).size).toBe(1);
    expect(answers[0]!.statusCode).toBe(201);
    expect(await rows('SELECT count(*)::int AS n FROM contact_messages')).toEqual([{ n: 1 }]);
  });

  it('refuses a malformed key with 400 and stores nothing', async () => {
    const res = await post({ 'idempotency-key': 'not a key' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(await rows('SELECT * FROM contact_messages')).toEqual([]);
  });

  it('is ready while the database answers', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ready', store: 'postgres' });
  });

  it('answers 503 + Retry-After within 2 s while the database is down, never 500, and recovers by itself', async () => {
    expect((await post()).statusCode).toBe(201);
    await server().stop();
    try {
      const started = performance.now();
      const down = await post({ 'idempotency-key': randomUUID() });
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(down.statusCode).toBe(503);
      expect(down.headers['retry-after']).toMatch(/^\d+$/);
      expect(down.headers['content-type']).toMatch(/^application\/json/);
      expect(down.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });

      // Everything that does not store a message carries on; readiness says what is wrong, liveness does not.
      expect((await app.inject({ method: 'GET', url: '/api/hello' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200);
      const ready = await app.inject({ method: 'GET', url: '/api/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.headers['retry-after']).toMatch(/^\d+$/);
      expect(ready.json()).toMatchObject({ status: 'unavailable', store: 'postgres' });
    } finally {
      await server().start();
    }

    // No restart: the same app stores again as soon as the server accepts connections.
    const deadline = Date.now() + 10_000;
    let res = await post();
    while (res.statusCode === 503 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      res = await post();
    }
    expect(res.statusCode).toBe(201);
    expect((await app.inject({ method: 'GET', url: '/api/health/ready' })).statusCode).toBe(200);
    expect(await rows('SELECT count(*)::int AS n FROM contact_messages')).toEqual([{ n: 2 }]);
  });
});
