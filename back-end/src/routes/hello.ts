import type { FastifyPluginAsync } from 'fastify';

export const GREETING = 'Hello, World!';

const hello: FastifyPluginAsync = async (app) => {
  // HEAD comes for free: Fastify adds a HEAD route for every GET (exposeHeadRoutes).
  // A plain callback rather than an async function: no promise per request.
  app.get('/hello', (_request, reply) => {
    reply.type('text/plain; charset=utf-8').send(GREETING);
  });
};

export default hello;
