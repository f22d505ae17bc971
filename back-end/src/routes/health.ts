import type { FastifyPluginAsync } from 'fastify';

const health: FastifyPluginAsync = async (app) => {
  // For the image's HEALTHCHECK and Compose's depends_on: answers only when the server accepts requests.
  // Its request line is at debug: Docker's probe every few seconds would drown real traffic at info.
  app.get('/health', { config: { requestLogLevel: 'debug' } }, async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }),
  );
};

export default health;
