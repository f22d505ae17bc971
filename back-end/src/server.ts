import type { Server } from 'node:http';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { stdoutDestination } from './logger.js';
import { listenMetrics } from './plugins/metrics.js';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (error) {
  // One line an operator can act on: it names the variable, and a database URL's password is never in it.
  process.stderr.write(`could not start: ${(error as Error).message}\n`);
  process.exit(1);
}
const logStream = stdoutDestination();
/** Resolves once every buffered line is out: process.exit() would drop a batch still on its way to the pipe. */
const logsWritten = () => new Promise((resolve) => logStream.flush(resolve));
const app = await buildApp({
  buildInfo: config.buildInfo,
  logger: { level: config.logLevel, stream: logStream },
  store: config.store,
  // Migrations are their own step (the migrate command); the server refuses a schema older than it needs.
  schema: 'check',
  trustedProxies: config.trustedProxies,
}).catch((error: unknown) => {
  // A database that refuses us (wrong password, no such database, an old schema, a bad certificate): one line.
  process.stderr.write(`could not start: ${(error as Error).message}\n`);
  process.exit(1);
});

// Prometheus's /metrics, on a port of its own; opened once the API listens.
let metricsServer: Server | undefined;

// Docker sends SIGKILL 10 s after SIGTERM; giving up a little earlier makes the exit ours, and logged.
closeWithGrace({ delay: 8000, logger: app.log }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an uncaught error');
  else app.log.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
  await app.close();
  metricsServer?.close();
  app.log.info('shut down cleanly');
  await logsWritten(); // close-with-grace calls process.exit() next
});

try {
  await app.listen({ host: config.host, port: config.port });
  metricsServer = await listenMetrics(app.metrics, { host: config.host, port: config.metricsPort });
} catch (error) {
  app.log.fatal({ err: error }, 'could not start');
  await logsWritten();
  process.exit(1);
}
