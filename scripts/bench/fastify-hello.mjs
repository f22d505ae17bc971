// The stock-Fastify reference for `npm run bench`: Fastify's documented hello-world with its own pino
// logging, one "request completed" JSON line per request (the "incoming request" line moved to debug,
// as in the `logController` example of Fastify's Server.md). Runs in the back-end's image, so Node,
// Fastify and pino are the very versions the back-end runs on. Bench only.
import Fastify, { LogController } from 'fastify';

class OneLinePerRequest extends LogController {
  incomingRequest(request) {
    request.log.debug({ req: request }, 'incoming request');
  }
}

const app = Fastify({ logger: true, logController: new OneLinePerRequest() });
app.get('/api/hello', async () => 'Hello, World!');
// The image's HEALTHCHECK asks for it.
app.get('/api/health', async () => ({ status: 'ok' }));
await app.listen({ port: 5252, host: '0.0.0.0' });
// PID 1 gets no default SIGTERM handler: exit at once so `compose down` does not wait.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
