import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { buildApp, replicaId } from './app.js';
import { SERVER_ERROR_BODY } from './testing/answers.js';

let app: FastifyInstance;
beforeAll(async () => {
  app = await buildApp();
});
afterAll(() => app.close());

describe('GET /api/hello', () => {
  it('answers exactly "Hello, World!" as UTF-8 text', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/hello' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('Hello, World!');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
  });

  it('ignores a query string', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/hello?name=x' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('Hello, World!');
  });

  it('answers HEAD with the same headers and no body', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/api/hello' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength('Hello, World!')));
  });

  it('names the replica that served it by an opaque id, never by its host (container or pod) name', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/hello' });
    expect(res.headers['x-served-by']).toMatch(/^[0-9a-f]{12}$/);
    expect(res.headers['x-served-by']).toBe(replicaId(hostname()));
    expect(res.headers['x-served-by']).not.toContain(hostname());
  });
});

describe('GET /api/health', () => {
  it('answers 200 JSON and is never cached', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toMatchObject({ status: 'ok' });
  });

  it('keeps every property of its body through the response schema', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/health' });
    expect(res.json()).toEqual({ status: 'ok', uptimeSeconds: expect.any(Number) });
  });
});

describe('errors', () => {
  it('answers an unknown path with a 404 JSON error', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'No route for GET /api/nope' });
  });

  it('does not treat a trailing slash as the same route', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/hello/' });
    expect(res.statusCode).toBe(404);
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'] as const)('answers %s /api/hello with 405 and Allow', async (method) => {
    const res = await app.inject({ method, url: '/api/hello', ...(method === 'DELETE' ? {} : { payload: {} }) });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.json()).toMatchObject({ statusCode: 405, error: 'Method Not Allowed' });
  });

  it('answers a wrong method with 405 even with a query string', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/health?x=1' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  /** Posts to a route that takes any body Fastify can parse, on an app of its own. */
  async function postToEcho(contentType: string, payload: string) {
    const withEcho = await buildApp();
    withEcho.post('/api/echo', async (request) => request.body);
    const res = await withEcho.inject({
      method: 'POST',
      url: '/api/echo',
      headers: { 'content-type': contentType },
      payload,
    });
    await withEcho.close();
    return res;
  }

  it('answers a malformed JSON body with 400 and no stack trace', async () => {
    const res = await postToEcho('application/json', '{"broken":');
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(res.body).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('refuses a body over 16 KB with 413', async () => {
    const res = await postToEcho('application/json', JSON.stringify({ text: 'x'.repeat(17 * 1024) }));
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ statusCode: 413 });
  });

  it('answers an unsupported content type with 415', async () => {
    const res = await postToEcho('application/x-unknown', 'x');
    expect(res.statusCode).toBe(415);
  });

  it('hides the details of a server error', async () => {
    const failing = await buildApp();
    failing.get('/api/boom', async () => {
      throw new Error('secret database password in /srv/app/db.ts:42');
    });
    const res = await failing.inject({ method: 'GET', url: '/api/boom' });
    await failing.close();
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual(SERVER_ERROR_BODY);
    expect(res.body).not.toContain('secret');
  });

  it('reuses a well-formed X-Request-ID from the proxy in its logs', async () => {
    const lines: string[] = [];
    const logged = await buildApp({ logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
    await logged.inject({ method: 'GET', url: '/api/hello', headers: { 'x-request-id': 'abc-123' } });
    await logged.close();
    const requestLines = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({ reqId: 'abc-123', method: 'GET', url: '/api/hello', status: 200 });
  });
});

describe('shutdown', () => {
  it('finishes a request in flight on close, asking the client to close its socket, then refuses more', async () => {
    const server = await buildApp();
    let arrived = () => {};
    const inHandler = new Promise<void>((resolve) => (arrived = resolve));
    let release = () => {};
    server.get('/api/slow', async () => {
      arrived();
      await new Promise<void>((resolve) => (release = resolve));
      return 'done';
    });
    const address = await server.listen({ host: '127.0.0.1', port: 0 });
    const inFlight = fetch(`${address}/api/slow`);
    // Closed only once the request is in the handler, however slow the machine.
    await inHandler;
    const closed = server.close();
    setTimeout(() => release(), 200);
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done');
    // Without it a keep-alive client (the proxy's upstream pool) would hold the socket and close() would wait on it.
    expect(res.headers.get('connection')).toBe('close');
    await closed;
    await expect(fetch(`${address}/api/hello`)).rejects.toThrow();
  });
});
