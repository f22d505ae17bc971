/** Property-based fuzzing of the API: whatever arrives, the answer is a clean JSON 4xx or a success, never a 5xx. */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from './app.js';
import { useTempDir } from './testing/temp-dir.js';

const storeDir = useTempDir('fuzz', { perFile: true });
let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp({ contactStorePath: join(storeDir(), 'messages.jsonl') });
});
afterAll(() => app.close());

const methods = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS');
const pathSegment = fc.oneof(
  fc.constantFrom('api', 'hello', 'health', 'contact', '..', '.', '%2e%2e', '%00', ''),
  fc.string({ maxLength: 12 }),
);
const paths = fc
  .array(pathSegment, { maxLength: 5 })
  .map((segments) => `/${segments.map(encodeURIComponent).join('/')}`);

it('answers any method on any path without a server error, and errors as JSON', async () => {
  await fc.assert(
    fc.asyncProperty(
      methods,
      fc.oneof(
        paths,
        paths.map((p) => `/api${p}`),
      ),
      async (method, url) => {
        const res = await app.inject({ method, url });
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400 && method !== 'HEAD')
          expect(res.headers['content-type']).toMatch(/^application\/json/);
      },
    ),
    { numRuns: 400 },
  );
});

it('answers any JSON body sent to /api/contact with 201 or a 4xx listing fields, never a 5xx', async () => {
  const field = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.emailAddress(),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 3 }),
  );
  const body = fc.oneof(
    fc.record({ name: field, email: field, message: field }, { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 10 }), field, { maxKeys: 5 }),
    fc.jsonValue({ maxDepth: 4 }),
  );
  await fc.assert(
    fc.asyncProperty(body, async (payload) => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/contact',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
      expect([201, 400]).toContain(res.statusCode);
      if (res.statusCode === 400) {
        const body = res.json<{ statusCode: number; fields?: object }>();
        expect(body.statusCode).toBe(400);
        // Fastify refuses a "__proto__" or "constructor" key before validation (prototype poisoning);
        // every other 400 names the fields at fault.
        const poisoned = /"(__proto__|constructor)"\s*:/.test(JSON.stringify(payload));
        if (!poisoned) expect(Object.keys(body.fields ?? {}).length).toBeGreaterThan(0);
      }
    }),
    { numRuns: 400 },
  );
});

it('answers arbitrary bytes sent to /api/contact with a 4xx, never a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2000 }),
      fc.constantFrom('application/json', 'application/x-www-form-urlencoded'),
      async (bytes, type) => {
        const res = await app.inject({
          method: 'POST',
          url: '/api/contact',
          headers: { 'content-type': type },
          payload: Buffer.from(bytes),
        });
        expect(res.statusCode).toBeLessThan(500);
      },
    ),
    { numRuns: 400 },
  );
});
