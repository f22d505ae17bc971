/**
 * HTTPS, opt-in: the stack with docker-compose.tls.yml and a certificate from `npm run certs:dev`.
 * TLS 1.2/1.3 only, HTTP/2, HSTS, HTTP redirected to HTTPS, and unknown host names dropped.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as connectHttp2 } from 'node:http2';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT, freePort, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { sendRaw } from './hostile-requests.js';

const skipReason = inject('stackSkipReason');

describe.skipIf(skipReason !== '').sequential('the stack with TLS turned on', () => {
  let stack: TestStack;
  let httpsPort: number;
  let certs: string;
  let ca: Buffer;

  beforeAll(async () => {
    certs = mkdtempSync(join(tmpdir(), 'softy-pinko-certs-'));
    const made = await run('bash', ['scripts/certs-dev.sh', certs]);
    expect(made.code, made.stderr).toBe(0);
    ca = readFileSync(join(certs, 'localhost.crt'));
    httpsPort = await freePort();
    stack = new TestStack(
      'softy-pinko-tls',
      await freePort(),
      {
        PROXY_TLS_PORT: String(httpsPort),
        TLS_CERT: join(certs, 'localhost.crt'),
        TLS_KEY: join(certs, 'localhost.key'),
        SERVER_NAME: 'softy-pinko.test',
      },
      { files: [`${REPO_ROOT}docker-compose.tls.yml`] },
    );
    await stack.down();
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
    rmSync(certs, { recursive: true, force: true });
  });

  it('serves the API over HTTPS with HSTS', async () => {
    const { status, headers, body } = await new Promise<{
      status: number;
      headers: Record<string, unknown>;
      body: string;
    }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: httpsPort, path: '/api/hello', servername: 'localhost', ca },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    expect(body).toBe('Hello, World!');
    expect(headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
  });

  it('speaks HTTP/2 over TLS 1.3', async () => {
    const session = connectHttp2(`https://localhost:${httpsPort}`, { ca });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/' });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      expect(status).toBe(200);
      expect(session.alpnProtocol).toBe('h2');
      expect((session.socket as unknown as { getProtocol(): string }).getProtocol()).toBe('TLSv1.3');
    } finally {
      session.close();
    }
  });

  it.each(['TLSv1', 'TLSv1.1'] as const)('refuses %s', async (version) => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = connectTls({
        host: '127.0.0.1',
        port: httpsPort,
        servername: 'localhost',
        ca,
        minVersion: version,
        maxVersion: version,
      });
      socket.on('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(outcome).not.toBe('connected');
  });

  it('redirects plain HTTP to HTTPS on the published port', async () => {
    const res = await fetch(`${stack.baseUrl}/api/hello?x=1`, { redirect: 'manual' });
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe(`https://127.0.0.1:${httpsPort}/api/hello?x=1`);
    expect(res.headers.get('strict-transport-security')).toBeNull();
  });

  it('drops requests for a host name it does not serve, and serves the ones it does', async () => {
    const ask = (host: string) =>
      sendRaw(stack.proxyPort, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(await ask('evil.example')).toBe(0);
    expect(await ask('softy-pinko.test.evil.example')).toBe(0);
    expect(await ask('softy-pinko.test')).toBe(301);
    expect(await ask('localhost')).toBe(301);
  });

  it('answers /healthz over plain HTTP whatever the Host, for health checks and probes', async () => {
    for (const host of ['10.1.2.3', 'localhost', 'softy-pinko.test']) {
      const raw = `GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      expect(await sendRaw(stack.proxyPort, raw), host).toBe(200);
    }
  });

  it('drops HTTPS requests for a host name it does not serve', async () => {
    const ask = (host: string) =>
      new Promise<string>((resolve) => {
        const req = request(
          { host: '127.0.0.1', port: httpsPort, path: '/', servername: 'localhost', ca, headers: { host } },
          (res) => {
            res.resume();
            resolve(String(res.statusCode));
          },
        );
        req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        req.end();
      });
    expect(await ask('evil.example')).toBe('ECONNRESET');
    expect(await ask('softy-pinko.test')).toBe('200');
  });
});
