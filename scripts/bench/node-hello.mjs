// The floor for the API in `npm run bench`: a bare node:http hello-world, no framework, no logging.
// Answers every request like GET /api/hello does (same body, same Content-Type). Bench only.
import { createServer } from 'node:http';

const body = 'Hello, World!';
const server = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  response.end(body);
});
server.listen(5252, '0.0.0.0');
// PID 1 gets no default SIGTERM handler: exit at once so `docker-compose down` does not wait.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
