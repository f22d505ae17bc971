import type { FastifyPluginAsync } from 'fastify';

const health: FastifyPluginAsync = async (app) => {
  // For the image's HEALTHCHECK and Compose's depends_on: answers only when the server accepts requests.
  app.get('/health', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }),
  );
};

export default health;
