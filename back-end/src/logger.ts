import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import pino from 'pino';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The level of this route's request line, when not info. */
    requestLogLevel?: 'debug';
  }
}

/**
 * Fastify's request logging as one JSON line per request, written when the answer is done: reqId (from
 * X-Request-ID, as the proxy logs it), method, url, status, durationMs and the client's address.
 */
export class RequestLineController extends LogController {
  // Nothing when a request arrives: the line written when it completes says all this one would.
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      durationMs: Number(reply.elapsedTime.toFixed(2)),
      remoteAddress: request.ip,
      // The visitor's scheme: https behind a TLS-terminating Gateway, as the proxy's X-Forwarded-Proto says.
      protocol: request.protocol,
    };
    // An answer that could not be written out is an error, with its cause.
    if (error) reply.log.error({ ...line, err: error }, 'request');
    else reply.log[request.routeOptions.config?.requestLogLevel ?? 'info'](line, 'request');
  }
}

/**
 * Standard output, buffered as pino's asynchronous logging documents it: lines leave in batches of a few KB,
 * or at most 100 ms after they were logged, instead of one write(2) each (BENCHMARKS.md has the gain).
 * pino flushes what is pending at exit and stops logging, rather than crashing, when nobody reads the pipe.
 */
export function stdoutDestination(fd = 1) {
  return pino.destination({ dest: fd, sync: false, minLength: 4096, periodicFlush: 100 });
}
