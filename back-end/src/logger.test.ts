import { closeSync, openSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildApp } from './app.js';
import { stdoutDestination } from './logger.js';
import { useTempDir } from './testing/temp-dir.js';

type Line = Record<string, unknown>;

/** An app logging at `level` into an array of parsed lines. */
async function loggedApp(level = 'info') {
  const lines: Line[] = [];
  const app = await buildApp({
    logger: { level, stream: { write: (line: string) => lines.push(JSON.parse(line) as Line) } },
    // app.inject() comes from 127.0.0.1: here, the proxy.
    trustedProxies: ['127.0.0.1'],
  });
  return { app, lines, requestLines: () => lines.filter((line) => line.msg === 'request') };
}

describe('the request line', () => {
  it('is one line per request, with the request ID the proxy logs and the client address it forwards', async () => {
    const { app, lines } = await loggedApp();
    await app.inject({
      method: 'GET',
      url: '/api/hello',
      headers: { 'x-request-id': 'abc-123', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' },
    });
    await app.close();
    expect(lines).toHaveLength(1);
    const [line] = lines;
    // pino's own fields first, then ours, in this order: log tools and the stack suite read them.
    expect(Object.keys(line ?? {})).toEqual([
      'level',
      'time',
      'pid',
      'hostname',
      'reqId',
      'method',
      'url',
      'status',
      'durationMs',
      'remoteAddress',
      'protocol',
      'msg',
    ]);
    expect(line).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: process.pid,
      hostname: hostname(),
      reqId: 'abc-123',
      method: 'GET',
      url: '/api/hello',
      status: 200,
      durationMs: expect.any(Number),
      remoteAddress: '203.0.113.9',
      protocol: 'https',
      msg: 'request',
    });
    expect(Math.abs(Number(line?.time) - Date.now())).toBeLessThan(60_000);
    // Milliseconds with at most two decimals.
    expect(String(line?.durationMs)).toMatch(/^\d+(\.\d{1,2})?$/);
  });

  it('is written for answers from the error handlers too: 404, 405, 400', async () => {
    const { app, requestLines } = await loggedApp();
    await app.inject({ method: 'GET', url: '/api/nope' });
    await app.inject({ method: 'DELETE', url: '/api/hello' });
    await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json' },
      payload: '{',
    });
    await app.close();
    expect(requestLines().map(({ level, url, status }) => ({ level, url, status }))).toEqual([
      { level: 30, url: '/api/nope', status: 404 },
      { level: 30, url: '/api/hello', status: 405 },
      { level: 30, url: '/api/contact', status: 400 },
    ]);
  });

  it('keeps hostile URLs and request IDs intact and the line valid JSON', async () => {
    const { app, requestLines } = await loggedApp();
    const id = 'id-with-"quotes"-and-\\';
    await app.inject({ method: 'GET', url: '/api/hello?q=\\back&é=✓&x=\u2028', headers: { 'x-request-id': id } });
    await app.close();
    // JSON.parse in loggedApp would have thrown on a broken line.
    expect(requestLines()).toEqual([
      expect.objectContaining({ url: '/api/hello?q=\\back&%C3%A9=%E2%9C%93&x=%E2%80%A8', reqId: id, status: 200 }),
    ]);
  });

  it('logs health checks at debug level only', async () => {
    for (const [level, expected] of [
      ['info', 0],
      ['debug', 1],
    ] as const) {
      const { app, requestLines } = await loggedApp(level);
      await app.inject({ method: 'GET', url: '/api/health' });
      await app.close();
      expect(requestLines()).toHaveLength(expected);
      if (expected) expect(requestLines()[0]).toMatchObject({ level: 20, url: '/api/health' });
    }
  });

  it('writes nothing below its level, and lines logged through request.log carry the request ID', async () => {
    for (const level of ['warn', 'silent']) {
      const quiet = await loggedApp(level);
      await quiet.app.inject({ method: 'GET', url: '/api/hello' });
      await quiet.app.close();
      expect(quiet.lines).toEqual([]);
    }

    const { app, lines, requestLines } = await loggedApp();
    app.get('/api/boom', async () => {
      throw new Error('boom');
    });
    await app.inject({ method: 'GET', url: '/api/boom', headers: { 'x-request-id': 'failing-1' } });
    await app.close();
    // The error line comes first, through the request's own logger; then the request line.
    expect(lines.map((line) => line.msg)).toEqual(['request failed', 'request']);
    expect(lines[0]).toMatchObject({
      level: 50,
      reqId: 'failing-1',
      err: expect.objectContaining({ message: 'boom' }),
    });
    expect(requestLines()[0]).toMatchObject({ level: 30, reqId: 'failing-1', status: 500 });
  });

  it("follows a route's own log level", async () => {
    const { app, requestLines } = await loggedApp('info');
    app.get('/api/quiet', { logLevel: 'warn' }, (_request, reply) => reply.send('shh'));
    app.get('/api/chatty', { logLevel: 'debug' }, (_request, reply) => reply.send('hi'));
    await app.inject({ method: 'GET', url: '/api/quiet' });
    await app.inject({ method: 'GET', url: '/api/chatty' });
    await app.close();
    expect(requestLines()).toEqual([expect.objectContaining({ url: '/api/chatty', level: 30 })]);
  });
});

describe('standard output for the logs', () => {
  const tempDir = useTempDir('log-destination');

  it('holds lines back, then writes them in order within its flush period, or at once on flushSync', async () => {
    const path = join(tempDir(), 'out.log');
    const fd = openSync(path, 'w');
    try {
      const destination = stdoutDestination(fd);
      destination.write('one\n');
      destination.write('two\n');
      expect(readFileSync(path, 'utf8')).toBe('');
      await expect.poll(() => readFileSync(path, 'utf8'), { timeout: 1000, interval: 20 }).toBe('one\ntwo\n');

      destination.write('é ✓ last words\n');
      expect(readFileSync(path, 'utf8')).toBe('one\ntwo\n');
      // What pino's exit handler calls.
      destination.flushSync();
      expect(readFileSync(path, 'utf8')).toBe('one\ntwo\né ✓ last words\n');
    } finally {
      closeSync(fd);
    }
  });
});
