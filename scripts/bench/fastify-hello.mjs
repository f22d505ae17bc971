// Stock Fastify for `npm run bench`, as documented: pino logs one "request completed" line per request (the
// "incoming request" line goes to debug, as in Server.md's logController example). Runs in the back-end's image.
import Fastify, { LogController } from 'fastify';

class OneLinePerRequest extends LogController {
  incomingRequest(request) {
    request.log.debug({ req: request }, 'incoming request');
  }
}

const app = Fastify({ logger: true, logController: new OneLinePerRequest() });
app.get('/api/hello', async () => 'Hello, World!');
app.get('/api/health', async () => ({ status: 'ok' })); // the image's HEALTHCHECK asks for it
await app.listen({ port: 5252, host: '0.0.0.0' });
// PID 1 gets no default SIGTERM handler: exit at once so `compose down` does not wait.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
