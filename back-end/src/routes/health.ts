import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { StoreUnavailableError, type ContactStore } from '../contact-store.js';
import { ErrorBody } from '../error-body.js';

export interface HealthOptions {
  /** The contact store, which readiness reports on. */
  store: ContactStore;
}

// The answers' bodies. Response schemas list every property sent: fast-json-stringify drops any other.
const Live = Type.Object({ status: Type.Literal('ok'), uptimeSeconds: Type.Integer() });
const StoreKind = Type.Union([Type.Literal('file'), Type.Literal('postgres')]);
const Ready = Type.Object({ status: Type.Literal('ready'), store: StoreKind });
const Unavailable = Type.Object({ status: Type.Literal('unavailable'), store: StoreKind, message: Type.String() });

const health: FastifyPluginAsyncTypebox<HealthOptions> = async (app, { store }) => {
  // For the image's HEALTHCHECK and Compose's depends_on: answers only when the server accepts requests.
  // Its request line is at debug: Docker's probe every few seconds would drown real traffic at info.
  const config = { requestLogLevel: 'debug' } as const;
  app.get('/health', { config, schema: { response: { 200: Live } } }, async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok', uptimeSeconds: Math.round(process.uptime()) }),
  );

  // Readiness, for a load balancer or Kubernetes: can this replica store a message now? Liveness above never
  // asks the database, so a database outage takes replicas out of rotation rather than restarting them.
  // A failure other than the store's is a 500, answered by plugins/errors.ts.
  const response = { 200: Ready, 503: Unavailable, '5xx': ErrorBody };
  app.get('/health/ready', { config, schema: { response } }, async (request, reply) => {
    reply.header('cache-control', 'no-store');
    try {
      await store.ready();
      return await reply.send({ status: 'ready', store: store.kind });
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      request.log.warn({ err: error }, 'not ready: the contact store is unavailable');
      return reply
        .code(503)
        .header('retry-after', String(RETRY_AFTER_SECONDS))
        .send({ status: 'unavailable', store: store.kind, message: error.message });
    }
  });
};

/** How soon a client may ask again when the store is unavailable: a restarted database is back in seconds. */
export const RETRY_AFTER_SECONDS = 2;

export default health;
