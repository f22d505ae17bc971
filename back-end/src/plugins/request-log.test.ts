import fc from 'fast-check';
import { hostname } from 'node:os';
import pino from 'pino';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import requestLog, { twoDecimals } from './request-log.js';

type Line = Record<string, unknown>;

/** An app logging at `level` into an array of parsed lines. */
async function loggedApp(level = 'info') {
  const lines: Line[] = [];
  const app = await buildApp({
    logger: { level, stream: { write: (line: string) => lines.push(JSON.parse(line) as Line) } },
  });
  return { app, lines, requestLines: () => lines.filter((line) => line.msg === 'request') };
}

describe('request log', () => {
  it('writes the line pino itself would write: same fields, same order, same values', async () => {
    const { app, requestLines } = await loggedApp();
    await app.inject({
      method: 'GET',
      url: '/api/hello',
      headers: { 'x-request-id': 'abc-123', 'x-forwarded-for': '203.0.113.9' },
    });
    await app.close();
    const [ours] = requestLines();
    expect(ours).toBeDefined();

    const pinoLines: Line[] = [];
    const reference = pino({ level: 'info' }, { write: (line: string) => pinoLines.push(JSON.parse(line) as Line) });
    const fields = {
      method: 'GET',
      url: '/api/hello',
      status: 200,
      durationMs: ours?.durationMs,
      remoteAddress: '203.0.113.9',
    };
    reference.child({ reqId: 'abc-123' }).info(fields, 'request');
    const [theirs] = pinoLines;

    expect(Object.keys(ours ?? {})).toEqual(Object.keys(theirs ?? {}));
    expect({ ...ours, time: 0 }).toEqual({ ...theirs, time: 0 });
    expect(ours).toMatchObject({ level: 30, pid: process.pid, hostname: hostname(), reqId: 'abc-123' });
    expect(Math.abs(Number(ours?.time) - Date.now())).toBeLessThan(60_000);
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

  it('writes nothing below its level, and lines logged through request.log still carry the request ID', async () => {
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
    // The error line comes first, through the request's own (lazily made) pino child; then the request line.
    expect(lines.map((line) => line.msg)).toEqual(['request failed', 'request']);
    expect(lines[0]).toMatchObject({
      level: 50,
      reqId: 'failing-1',
      err: expect.objectContaining({ message: 'boom' }),
    });
    expect(requestLines()[0]).toMatchObject({ reqId: 'failing-1', status: 500 });
  });

  it("refuses to start on a logger without pino's level table, instead of writing no line at all", async () => {
    const noop = () => undefined;
    const bare = {
      level: 'info',
      info: noop,
      error: noop,
      debug: noop,
      fatal: noop,
      warn: noop,
      trace: noop,
      silent: noop,
      child: () => bare,
    };
    const app = Fastify({ loggerInstance: bare });
    await expect(app.register(requestLog, { destination: { write: noop } }).ready()).rejects.toThrow(
      /no pino level table/,
    );
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

describe('twoDecimals', () => {
  const reference = (ms: number) => String(Number(ms.toFixed(2)));

  it('prints what Number(ms.toFixed(2)) prints, for any duration', () => {
    const durations = fc.oneof(
      fc.double({ min: 0, max: 1e13, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.integer({ min: 0, max: 10_000_000 }).map((hundredths) => hundredths / 100),
      fc.integer({ min: 0, max: 10_000_000 }).map((thousandths) => thousandths / 1000),
    );
    fc.assert(
      fc.property(durations, (ms) => twoDecimals(ms) === reference(ms)),
      { numRuns: 20_000 },
    );
  });

  it('drops trailing zeros and a bare point, and takes the long way outside its exact range', () => {
    expect([0, 0.004, 0.005, 0.1, 1.5, 2, 12.345, 1.005, 99.999].map(twoDecimals)).toEqual([
      '0',
      '0',
      '0.01',
      '0.1',
      '1.5',
      '2',
      '12.35',
      '1',
      '100',
    ]);
    for (const ms of [-0.001, -3, 1e13, 1e15 + 0.25, 1e21, 1e300, Infinity, NaN])
      expect(twoDecimals(ms)).toBe(reference(ms));
  });
});
