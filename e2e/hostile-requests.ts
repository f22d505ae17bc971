/**
 * Malformed and hostile HTTP requests, written byte for byte to a raw socket (no HTTP client would
 * send them), each with the status the proxy must answer. Grouped by what they attack.
 */
import { connect } from 'node:net';

export interface HostileRequest {
  category: string;
  name: string;
  raw: string;
  expect: number;
}

const HOST = 'Host: localhost\r\n';
const get = (path: string, headers = '') => `GET ${path} HTTP/1.1\r\n${HOST}${headers}Connection: close\r\n\r\n`;
const post = (path: string, headers: string, body = '') =>
  `POST ${path} HTTP/1.1\r\n${HOST}${headers}Connection: close\r\n\r\n${body}`;
const json = (body: string) =>
  post(
    '/api/contact',
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n`,
    body,
  );

export const HOSTILE_REQUESTS: HostileRequest[] = [
  // Broken request lines.
  { category: 'request line', name: 'not HTTP at all', raw: 'GARBAGE\r\n\r\n', expect: 400 },
  { category: 'request line', name: 'lowercase method', raw: `get / HTTP/1.1\r\n${HOST}\r\n`, expect: 400 },
  { category: 'request line', name: 'HTTP/9.9', raw: `GET / HTTP/9.9\r\n${HOST}\r\n`, expect: 505 },
  { category: 'request line', name: 'HTTP/2.0 over plain HTTP/1', raw: `GET / HTTP/2.0\r\n${HOST}\r\n`, expect: 505 },
  { category: 'request line', name: 'HTTP/1.1 without Host', raw: 'GET / HTTP/1.1\r\n\r\n', expect: 400 },
  { category: 'request line', name: 'bad percent-encoding', raw: get('/%zz'), expect: 400 },
  { category: 'request line', name: '10 KB URI', raw: get(`/${'a'.repeat(10_000)}`), expect: 414 },
  {
    category: 'request line',
    name: '10 KB query on the API',
    raw: get(`/api/hello?q=${'a'.repeat(10_000)}`),
    expect: 414,
  },

  // Oversized or malformed headers.
  { category: 'headers', name: '10 KB header', raw: get('/', `X-Big: ${'a'.repeat(10_000)}\r\n`), expect: 400 },
  { category: 'headers', name: '9 KB cookie', raw: get('/', `Cookie: c=${'x'.repeat(9000)}\r\n`), expect: 400 },
  {
    category: 'headers',
    name: '300 headers of 200 bytes',
    raw: get('/', Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'v'.repeat(200)}\r\n`).join('')),
    expect: 400,
  },
  {
    category: 'headers',
    name: 'space before the colon',
    raw: 'GET / HTTP/1.1\r\nHost : localhost\r\n\r\n',
    expect: 400,
  },
  { category: 'headers', name: 'bare CR inside a header', raw: get('/', 'X-A: a\rb\r\n'), expect: 400 },
  { category: 'headers', name: 'Host with a space', raw: 'GET / HTTP/1.1\r\nHost: ex ample\r\n\r\n', expect: 400 },
  { category: 'headers', name: 'Host with a path', raw: 'GET / HTTP/1.1\r\nHost: ../../etc\r\n\r\n', expect: 400 },
  { category: 'headers', name: 'two Host headers', raw: get('/', 'Host: evil.example\r\n'), expect: 400 },
  { category: 'headers', name: '9 KB Host', raw: `GET / HTTP/1.1\r\nHost: ${'h'.repeat(9000)}\r\n\r\n`, expect: 400 },
  // 0: the connection is closed without an answer (nginx's 444), the proxy's reply to a host it does not serve.
  {
    category: 'headers',
    name: 'a Host this site does not serve',
    raw: 'GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    expect: 0,
  },
  {
    category: 'headers',
    name: 'a served name as a suffix of another',
    raw: 'GET / HTTP/1.1\r\nHost: localhost.evil.example\r\nConnection: close\r\n\r\n',
    expect: 0,
  },

  // Bodies: sizes, framing, and request smuggling attempts.
  { category: 'body', name: '20 KB body by Content-Length', raw: json(`"${'a'.repeat(20_000)}"`), expect: 413 },
  {
    category: 'body',
    name: '20 KB body announced with Expect: 100-continue',
    raw: post('/api/contact', 'Content-Type: application/json\r\nContent-Length: 20000\r\nExpect: 100-continue\r\n'),
    expect: 413,
  },
  {
    category: 'body',
    name: '20 KB chunked body',
    raw: post(
      '/api/contact',
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
      `4e20\r\n${'a'.repeat(20_000)}\r\n0\r\n\r\n`,
    ),
    expect: 413,
  },
  {
    category: 'body',
    name: 'negative Content-Length',
    raw: post('/api/contact', 'Content-Length: -1\r\n'),
    expect: 400,
  },
  {
    category: 'body',
    name: 'non-numeric Content-Length',
    raw: post('/api/contact', 'Content-Length: abc\r\n'),
    expect: 400,
  },
  {
    category: 'smuggling',
    name: 'Content-Length and Transfer-Encoding together (CL.TE)',
    raw: post('/api/contact', 'Content-Length: 6\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\nX'),
    expect: 400,
  },
  {
    category: 'smuggling',
    name: 'two different Content-Lengths',
    raw: post('/api/contact', 'Content-Length: 2\r\nContent-Length: 3\r\n', '{}'),
    expect: 400,
  },
  {
    category: 'smuggling',
    name: 'Transfer-Encoding twice (TE.TE)',
    raw: post('/api/contact', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n', '0\r\n\r\n'),
    expect: 400,
  },
  {
    category: 'smuggling',
    name: 'Transfer-Encoding: chunked, identity',
    raw: post('/api/contact', 'Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n'),
    expect: 501,
  },
  {
    category: 'smuggling',
    name: 'Transfer-Encoding: gzip',
    raw: post('/api/contact', 'Transfer-Encoding: gzip\r\n'),
    expect: 501,
  },
  {
    category: 'smuggling',
    name: 'invalid chunk size',
    raw: post(
      '/api/contact',
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n',
      'ZZ\r\n{}\r\n0\r\n\r\n',
    ),
    expect: 400,
  },

  // Paths that try to leave the site.
  { category: 'traversal', name: '/../../etc/passwd', raw: get('/../../etc/passwd'), expect: 400 },
  { category: 'traversal', name: 'encoded %2e%2e', raw: get('/%2e%2e/%2e%2e/etc/passwd'), expect: 400 },
  { category: 'traversal', name: 'encoded slashes ..%2f', raw: get('/assets/..%2f..%2f..%2fetc/passwd'), expect: 400 },
  { category: 'traversal', name: 'through the API prefix', raw: get('/api/%2e%2e/%2e%2e/etc/passwd'), expect: 400 },
  { category: 'traversal', name: 'double slash //etc/passwd', raw: get('//etc/passwd'), expect: 404 },
  { category: 'traversal', name: 'dotfile /.env', raw: get('/.env'), expect: 404 },
  {
    category: 'traversal',
    name: 'dotfile via the API prefix /api/../.git/config',
    raw: get('/api/../.git/config'),
    expect: 404,
  },
  { category: 'traversal', name: 'encoded NUL %00', raw: get('/index.html%00.js'), expect: 400 },
  { category: 'traversal', name: 'raw NUL byte', raw: get('/in\0dex.html'), expect: 400 },
  { category: 'encoding', name: 'invalid UTF-8, percent-encoded', raw: get('/%ff%fe%fd'), expect: 404 },
  { category: 'encoding', name: 'invalid UTF-8, raw bytes', raw: get('/\xff\xfe'), expect: 404 },

  // Methods the site does not serve.
  { category: 'method', name: 'unknown method FOO', raw: `FOO / HTTP/1.1\r\n${HOST}\r\n`, expect: 405 },
  { category: 'method', name: 'TRACE', raw: `TRACE / HTTP/1.1\r\n${HOST}\r\n`, expect: 405 },
  { category: 'method', name: 'CONNECT', raw: `CONNECT localhost:80 HTTP/1.1\r\n${HOST}\r\n`, expect: 405 },
  {
    category: 'method',
    name: 'PUT on the page',
    raw: `PUT / HTTP/1.1\r\n${HOST}Content-Length: 0\r\n\r\n`,
    expect: 405,
  },
  { category: 'method', name: 'DELETE on the API', raw: `DELETE /api/hello HTTP/1.1\r\n${HOST}\r\n`, expect: 405 },

  // Hostile payloads the API must refuse cleanly.
  { category: 'payload', name: 'truncated JSON', raw: json('{"a":'), expect: 400 },
  {
    category: 'payload',
    name: '5,000-deep nested JSON',
    raw: json(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    expect: 400,
  },
  {
    category: 'payload',
    name: 'prototype pollution via __proto__',
    raw: json('{"__proto__":{"x":1},"name":"a","email":"a@b.co","message":"m"}'),
    expect: 400,
  },
  {
    category: 'payload',
    name: 'text/plain body',
    raw: post('/api/contact', 'Content-Type: text/plain\r\nContent-Length: 2\r\n', 'hi'),
    expect: 415,
  },
];

/** Sends raw bytes and resolves to the status code of the answer, or 0 when the server closed without one. */
export function sendRaw(port: number, raw: string, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', () => {}); // a reset after the answer is fine; the status is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1] ?? 0));
    });
    socket.write(Buffer.from(raw, 'latin1'));
    // Half-close after a moment: the server answers what it has, then closes.
    setTimeout(() => socket.end(), 300);
  });
}

/**
 * A slow-loris client: opens a request and trickles header bytes without ever finishing. Resolves
 * with how long the server kept the connection open.
 */
export function slowLoris(port: number, trickleEveryMs: number, giveUpMs: number): Promise<number> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ port, host: '127.0.0.1' });
    socket.write(`GET / HTTP/1.1\r\n${HOST}`);
    const trickle = setInterval(() => socket.write(`X-${Date.now()}: a\r\n`), trickleEveryMs);
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(trickle);
      clearTimeout(giveUp);
      resolve(Date.now() - started);
    });
  });
}
