// The floor for the API in `npm run bench`: bare node:http, no framework, no logging, GET /api/hello's answer.
import { createServer } from 'node:http';

const headers = { 'content-type': 'text/plain; charset=utf-8', 'content-length': '13' };
createServer((_request, response) => response.writeHead(200, headers).end('Hello, World!')).listen(5252, '0.0.0.0');
// PID 1 gets no default SIGTERM handler: exit at once so `compose down` does not wait.
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
