import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { lazyChildLoggerFactory } from './lazy-child-logger.js';

function parentLogger() {
  const lines: Record<string, unknown>[] = [];
  const parent = pino(
    { level: 'info' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const makeChild = vi.spyOn(parent, 'child');
  return { parent, lines, makeChild };
}

describe('lazy child logger', () => {
  it('makes no pino child until something logs, then exactly one', () => {
    const { parent, lines, makeChild } = parentLogger();
    const child = lazyChildLoggerFactory.call(undefined as never, parent, { reqId: 'r-1' }, {}, undefined as never);
    expect(child.level).toBe('info');
    expect(makeChild).not.toHaveBeenCalled();
    child.debug('below the level');
    expect(makeChild).toHaveBeenCalledTimes(1);
    child.info({ detail: 1 }, 'first');
    child.warn('second');
    expect(makeChild).toHaveBeenCalledTimes(1);
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, reqId: 'r-1', detail: 1, msg: 'first' }),
      expect.objectContaining({ level: 40, reqId: 'r-1', msg: 'second' }),
    ]);
  });

  it('reads the parent level without making a child, and sets its own', () => {
    const { parent, lines, makeChild } = parentLogger();
    const child = lazyChildLoggerFactory.call(undefined as never, parent, { reqId: 'r-2' }, {}, undefined as never);
    parent.level = 'warn';
    expect(child.level).toBe('warn');
    expect(makeChild).not.toHaveBeenCalled();
    child.level = 'debug';
    child.debug('now visible');
    expect(parent.level).toBe('warn');
    expect(lines).toEqual([expect.objectContaining({ level: 20, reqId: 'r-2', msg: 'now visible' })]);
    expect(child.child({ step: 'x' }).level).toBe('debug');
  });

  it("reports the level it was made with (a route's logLevel) before any child exists", () => {
    const { parent, lines, makeChild } = parentLogger();
    const child = lazyChildLoggerFactory.call(
      undefined as never,
      parent,
      { reqId: 'r-3' },
      { level: 'warn' },
      undefined as never,
    );
    expect(child.level).toBe('warn');
    expect(makeChild).not.toHaveBeenCalled();
    child.info('below the route level');
    child.warn('at the route level');
    expect(lines).toEqual([expect.objectContaining({ level: 40, reqId: 'r-3', msg: 'at the route level' })]);
  });
});
