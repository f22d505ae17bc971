import { buildApp } from './app.js';
import { listenAddress } from './config.js';

/** Docker sends SIGKILL 10 s after SIGTERM; we give up a little earlier so the exit is ours. */
const SHUTDOWN_GRACE_MS = 8000;

const { host, port } = listenAddress();
const app = await buildApp({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });

let closing = false;
async function shutDown(signal: NodeJS.Signals): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, 'shutting down: no new connections, finishing requests in flight');
  const force = setTimeout(() => {
    app.log.error('requests still in flight after the grace period; exiting anyway');
    process.exit(1);
  }, SHUTDOWN_GRACE_MS);
  force.unref();
  await app.close();
  app.log.info('shut down cleanly');
  // No process.exit(): with the server closed the event loop empties and Node exits by itself, after
  // the last log line is flushed. Should anything still hold it open, the timer above ends it.
  process.exitCode = 0;
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void shutDown(s));

try {
  await app.listen({ host, port });
} catch (error) {
  app.log.fatal({ err: error }, 'could not start');
  process.exit(1);
}
