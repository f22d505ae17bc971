import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Once close() starts, answers still in flight carry `Connection: close`. Otherwise a keep-alive peer
 * (the proxy's upstream pool) keeps its socket open and close() would wait on it until Docker's SIGKILL.
 */
const gracefulClose: FastifyPluginAsync = async (app) => {
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
};

export default fp(gracefulClose, { name: 'graceful-close' });
