import { hostname } from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import { DEFAULT_CONTACT_STORE_PATH, openContactStore, type StoreSelection } from './contact-store.js';
import type { PostgresStoreOptions } from './stores/postgres.js';
import { RequestLineController } from './logger.js';
import errors from './plugins/errors.js';
import gracefulClose from './plugins/graceful-close.js';
import metrics, { countContactStore, type BuildInfo } from './plugins/metrics.js';
import contact from './routes/contact.js';
import health from './routes/health.js';
import hello from './routes/hello.js';
import { trustedProxies as trustedProxiesOf } from './trusted-proxies.js';
import { replicaId } from './replica-id.js';

export interface LoggerOptions {
  level: string;
  /** Where the JSON lines go: buffered standard output in the server (logger.ts), an array in tests. */
  stream: DestinationStream;
}

export interface AppOptions {
  /** What the build-info gauge names; "dev" and "unknown" outside an image. */
  buildInfo?: BuildInfo;
  /** Log level and destination, or false for silence in tests. */
  logger?: LoggerOptions | false;
  /** The JSON-lines file contact messages are appended to; tests point it at a temp dir. */
  contactStorePath?: string;
  /** Where contact messages are kept (config.ts reads it from the environment); wins over contactStorePath. */
  store?: StoreSelection;
  /** PostgreSQL: 'check' (the server) refuses a schema the migrate command has not brought up to date. */
  schema?: PostgresStoreOptions['schema'];
  /** Another folder of migrations (tests). */
  migrationsDir?: string;
  /** Peers whose X-Forwarded-* headers are believed (config.ts's TRUSTED_PROXIES); none by default. */
  trustedProxies?: string[];
}

export { replicaId };

/** Builds the API without listening, so tests can drive it through `app.inject()` with no network. */
export async function buildApp({
  buildInfo = { version: 'dev', commit: 'unknown' },
  logger = false,
  contactStorePath = DEFAULT_CONTACT_STORE_PATH,
  store = { path: contactStorePath },
  schema = 'migrate',
  migrationsDir,
  trustedProxies = [],
}: AppOptions = {}): Promise<FastifyInstance> {
  const proxies = trustedProxiesOf(trustedProxies);
  const app = Fastify({
    logger: logger && { level: logger.level, stream: logger.stream },
    // One line per request, written when it completes (logger.ts), instead of Fastify's two.
    logController: new RequestLineController(),
    // The proxy sets X-Request-ID; reusing it ties the proxy's log line to ours.
    requestIdHeader: 'x-request-id',
    // Behind nginx: the client's address and scheme come from X-Forwarded-For and -Proto, but only when the
    // peer is the proxy; any other container that reaches us is its own client.
    trustProxy: (address) => proxies.trusts(address),
    // The API takes small bodies only; anything bigger is refused with 413 before it is buffered.
    bodyLimit: 16 * 1024,
    // Close idle keep-alive sockets on shutdown so close() does not wait on them.
    forceCloseConnections: 'idle',
    // Keep-alive longer than nginx's upstream keepalive_timeout (60s), so nginx never reuses a socket we just closed.
    keepAliveTimeout: 65_000,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 200 },
    // Bodies are checked as sent: every problem at once, no type coercion, and unknown fields refused, not dropped.
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });

  app.addHook('onClose', async () => proxies.close());

  // Names the replica in every answer: with several back-ends behind the proxy, this is how you tell them apart.
  // An opaque id, so the public never learns a container's or pod's name.
  const servedBy = replicaId(hostname());
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-served-by', servedBy);
    done(null, payload);
  });

  // PostgreSQL's schema is checked (or migrated) here; one that cannot be reached yet does not stop start-up.
  const contactStore = await openContactStore(store, {
    warn: (message) => app.log.warn(message),
    schema,
    ...(migrationsDir ? { migrationsDir } : {}),
  });
  app.addHook('onClose', () => contactStore.close());

  // First, so its onResponse hook counts every answer, errors and unknown paths included.
  await app.register(metrics, { buildInfo });
  await app.register(gracefulClose);
  await app.register(errors);
  await app.register(hello, { prefix: '/api' });
  await app.register(health, { prefix: '/api', store: contactStore });
  await app.register(contact, { prefix: '/api', store: countContactStore(contactStore, app.metrics) });
  return app;
}
