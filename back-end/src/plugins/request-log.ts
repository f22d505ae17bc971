import { hostname } from 'node:os';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Logger } from 'pino';

/** Where JSON log lines go. */
export interface LogDestination {
  write(line: string): void;
}

export interface RequestLogOptions {
  /** The app's pino logger's own destination, so request lines and other lines keep their order. */
  destination: LogDestination;
}

/** pino's numbers for the two levels request lines are written at, which log tools read. */
const DEBUG = 20;
const INFO = 30;

/** Printable ASCII but for `"` and the backslash: the usual URL, method, ID and address, safe between quotes as is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string literal: JSON.stringify only for what needs escaping (a third of its cost saved on the usual line). */
function quote(text: string): string {
  return PLAIN.test(text) ? `"${text}"` : JSON.stringify(text);
}

const ZERO = 0x30;

/**
 * `Number(ms.toFixed(2))` as it prints ("0.38", "1.5", "2"), made from the toFixed text alone by dropping
 * trailing zeros: the same text without parsing it into a number and printing that again, which took
 * ~1,000 of the line's 12,000-16,000 instructions per request (BENCHMARKS.md, step 15). Exact below
 * 1e13, where the text has at most 15 significant digits; anything else takes the long way.
 */
export function twoDecimals(ms: number): string {
  const fixed = ms.toFixed(2);
  if (!(ms >= 0 && ms < 1e13)) return String(Number(fixed));
  if (fixed.charCodeAt(fixed.length - 1) !== ZERO) return fixed;
  if (fixed.charCodeAt(fixed.length - 2) !== ZERO) return fixed.slice(0, -1);
  return fixed.slice(0, -3);
}

/**
 * The line pino writes for `request.log.info({ method, url, status, durationMs, remoteAddress }, 'request')`
 * with pino's default options (epoch time, pid and hostname, the request ID as `reqId`), built by hand:
 * the request line is the one log line every request pays for, and pino's generic serializer plus the
 * child logger it needs cost more than the rest of the back-end's own code together (npm run bench).
 */
function formatRequestLine(level: number, request: FastifyRequest, reply: FastifyReply, base: string): string {
  return (
    `{"level":${level},"time":${Date.now()}${base},"reqId":${quote(String(request.id))},` +
    `"method":${quote(request.method)},"url":${quote(request.url)},"status":${reply.statusCode},` +
    `"durationMs":${twoDecimals(reply.elapsedTime)},"remoteAddress":${quote(request.ip)},"msg":"request"}\n`
  );
}

/** One JSON log line per request, written when the response is done, with what an operator needs. */
const requestLog: FastifyPluginAsync<RequestLogOptions> = async (app, { destination }) => {
  // pino's default bindings on every line, computed once.
  const base = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`;
  // The logger's own table of level numbers by name (custom levels included); a line is written when its
  // level is at least the request logger's. A name with no number writes nothing.
  const levelValues = (app.log as Partial<Pick<Logger, 'levels'>>).levels?.values;
  // Without the table no line would ever pass the check: refuse to start rather than log nothing, silently.
  if (!levelValues) throw new Error("request-log: the app's logger has no pino level table (levels.values)");
  // Callback style: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // Health checks arrive every few seconds from Docker; at info level they would drown real traffic.
    const level = request.url === '/api/health' ? DEBUG : INFO;
    if (level >= (levelValues[request.log.level] ?? Infinity))
      destination.write(formatRequestLine(level, request, reply, base));
    done();
  });
};

export default fp(requestLog, { name: 'request-log' });
