import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

/** One JSON log line per request, written when the response is done, with what an operator needs. */
const requestLog: FastifyPluginAsync = async (app) => {
  // Callback style: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    // Health checks arrive every few seconds from Docker; at info level they would drown real traffic.
    const level = request.url === '/api/health' ? 'debug' : 'info';
    request.log[level](
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        durationMs: Number(reply.elapsedTime.toFixed(2)),
        remoteAddress: request.ip,
      },
      'request',
    );
    done();
  });
};

export default fp(requestLog, { name: 'request-log' });
