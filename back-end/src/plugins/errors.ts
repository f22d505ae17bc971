import type { FastifyError, FastifyPluginAsync, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { errorBody, type ErrorBody } from '../error-body.js';

function sendError(reply: FastifyReply, statusCode: number, message: string, fields?: Record<string, string>) {
  return reply
    .code(statusCode)
    .type('application/json; charset=utf-8')
    .send(errorBody(statusCode, message, fields));
}

/**
 * Every error leaves as the same small JSON shape. Client errors keep their message; server errors
 * are logged in full and answered with a generic one, so no stack trace or internal detail leaks.
 */
const errors: FastifyPluginAsync = async (app) => {
  // Which methods each path answers, collected as routes are added, so an unknown method gets 405 + Allow.
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = methodsByPath.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    methodsByPath.set(route.url, methods);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0] ?? request.url;
    const allowed = methodsByPath.get(path);
    if (allowed) {
      reply.header('allow', [...allowed].sort().join(', '));
      return sendError(reply, 405, `${request.method} is not allowed on ${path}`);
    }
    return sendError(reply, 404, `No route for ${request.method} ${path}`);
  });

  app.setErrorHandler((error: FastifyError & Pick<ErrorBody, 'fields'>, request, reply) => {
    const statusCode = error.statusCode ?? 500;
    if (statusCode >= 500) {
      request.log.error({ err: error }, 'request failed');
      return sendError(reply, statusCode, 'Something went wrong on our side.');
    }
    return sendError(reply, statusCode, error.message, error.fields);
  });
};

export default fp(errors, { name: 'errors' });
