/**
 * The whole stack in real containers: built from the Dockerfiles, started with Compose, checked
 * through the published proxy port from the host and in headless Chromium, then taken down.
 */
import { mkdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { browserSkipReason, launchBrowser } from './browser.js';
import { REPO_ROOT, Stack, run } from './docker.js';

const skipReason = inject('stackSkipReason');
const ARTIFACTS = `${REPO_ROOT}artifacts/screenshots`;

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Resolves to 'refused', 'open' or another error code for a TCP connection from the host. */
function tryConnect(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: 3000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? 'error')));
  });
}

describe.skipIf(skipReason !== '').sequential('the stack in containers', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = new Stack(inject('compose'), 'softy-pinko-e2e', await freePort());
    await stack.down(); // leftovers of an interrupted run
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  describe('through the proxy', () => {
    it('serves the page at / with HTML, no-cache and the #dynamic-content element', async () => {
      const res = await fetch(`${stack.baseUrl}/`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const html = await res.text();
      expect(html).toContain('<title>');
      expect(html).toMatch(/Softy\s*Pinko/);
      expect(html).toMatch(/id="dynamic-content"/);
      // Built by Vite: the TypeScript source is never shipped, a hashed bundle is.
      expect(html).not.toContain('/src/main.ts');
      expect(html).toMatch(/\/assets\/[\w-]+\.js/);
    });

    it('serves hashed assets with their MIME type, gzip and a one-year immutable cache', async () => {
      const html = await (await fetch(`${stack.baseUrl}/`)).text();
      const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThanOrEqual(2);
      for (const asset of assets) {
        const res = await fetch(`${stack.baseUrl}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
        expect(res.status, asset).toBe(200);
        expect(res.headers.get('content-type'), asset).toMatch(asset.endsWith('.css') ? /^text\/css/ : /^(application|text)\/javascript/);
        expect(res.headers.get('cache-control'), asset).toBe('public, max-age=31536000, immutable');
        expect(res.headers.get('content-encoding'), asset).toBe('gzip');
      }
    });

    it('answers an unknown page with our own 404 page', async () => {
      const res = await fetch(`${stack.baseUrl}/no/such/page`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const html = await res.text();
      expect(html).toMatch(/Softy\s*Pinko/);
      expect(html).not.toContain('<center>nginx</center>');
    });

    it('never serves dotfiles', async () => {
      for (const path of ['/.env', '/.git/config', '/assets/.hidden']) {
        expect((await fetch(`${stack.baseUrl}${path}`)).status, path).toBe(404);
      }
    });

    it('answers /api/hello with exactly "Hello, World!"', async () => {
      const res = await fetch(`${stack.baseUrl}/api/hello`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      expect(await res.text()).toBe('Hello, World!');
    });

    it('answers HEAD /api/hello without a body', async () => {
      const res = await fetch(`${stack.baseUrl}/api/hello`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
    });

    it('passes the API errors through: 404 JSON, 405 with Allow', async () => {
      const notFound = await fetch(`${stack.baseUrl}/api/nope`);
      expect(notFound.status).toBe(404);
      expect(await notFound.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
      const wrongMethod = await fetch(`${stack.baseUrl}/api/hello`, { method: 'DELETE' });
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('GET, HEAD');
    });

    it('hides the nginx version and sets security headers and a request ID', async () => {
      const res = await fetch(`${stack.baseUrl}/api/hello`);
      expect(res.headers.get('server')).toBe('nginx');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
      const mine = await fetch(`${stack.baseUrl}/api/hello`, { headers: { 'x-request-id': 'e2e-trace-42' } });
      expect(mine.headers.get('x-request-id')).toBe('e2e-trace-42');
      const forged = await fetch(`${stack.baseUrl}/api/hello`, { headers: { 'x-request-id': 'bad id with spaces' } });
      expect(forged.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    });

    it('forwards the client address and request ID to the back-end, which logs them as JSON', async () => {
      await fetch(`${stack.baseUrl}/api/hello`, { headers: { 'x-request-id': 'e2e-log-check', 'x-forwarded-for': '203.0.113.9' } });
      const [backEnd] = await stack.containers('back-end');
      const { stdout } = await run('docker', ['logs', backEnd!]);
      const line = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.reqId === 'e2e-log-check');
      expect(line).toMatchObject({ msg: 'request', method: 'GET', url: '/api/hello', status: 200 });
      // The proxy is the edge: a client-supplied X-Forwarded-For is replaced, not trusted.
      expect(line?.remoteAddress).not.toBe('203.0.113.9');
      expect(line?.remoteAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    });

    it('logs each request as one JSON line naming the upstream that served it', async () => {
      await fetch(`${stack.baseUrl}/api/hello`, { headers: { 'x-request-id': 'e2e-proxy-log' } });
      const [proxy] = await stack.containers('proxy');
      const { stdout } = await run('docker', ['logs', proxy!]);
      const line = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.request_id === 'e2e-proxy-log');
      expect(line).toMatchObject({ method: 'GET', uri: '/api/hello', status: 200, upstream_status: '200' });
      expect(line?.upstream_addr).toMatch(/^\d+\.\d+\.\d+\.\d+:5252$/);
    });
  });

  describe('isolation', () => {
    it('refuses connections to 9000 and 5252 from the host while the proxy port answers', async () => {
      expect(await tryConnect(stack.proxyPort)).toBe('open');
      expect(await tryConnect(9000)).toBe('refused');
      expect(await tryConnect(5252)).toBe('refused');
    });

    it('publishes no port of the front-end or the back-end, and only port 80 of the proxy', async () => {
      for (const service of ['front-end', 'back-end']) {
        const [id] = await stack.containers(service);
        expect(await stack.inspect(id!, '.NetworkSettings.Ports'), service).toSatisfy((ports: Record<string, unknown[] | null>) =>
          Object.values(ports ?? {}).every((bindings) => bindings === null || bindings.length === 0),
        );
      }
      const [proxy] = await stack.containers('proxy');
      const ports = await stack.inspect<Record<string, { HostPort: string }[] | null>>(proxy!, '.NetworkSettings.Ports');
      expect(Object.keys(ports).filter((port) => (ports[port] ?? []).length > 0)).toEqual(['80/tcp']);
      expect(ports['80/tcp']?.[0]?.HostPort).toBe(String(stack.proxyPort));
    });

    it('runs every service as a non-root user', async () => {
      for (const service of ['front-end', 'back-end', 'proxy']) {
        const [id] = await stack.containers(service);
        const { stdout } = await run('docker', ['exec', id!, 'id', '-u']);
        expect(stdout.trim(), service).not.toBe('0');
      }
    });
  });

  describe.skipIf(browserSkipReason() !== '')('in headless Chromium', () => {
    it.each([
      ['phone', 390, 844],
      ['desktop', 1366, 900],
    ])('shows "Hello, World!" in #dynamic-content on a %s, with no console error and no failed request', async (name, width, height) => {
      const browser = await launchBrowser();
      try {
        const page = await browser.context.newPage();
        await page.setViewportSize({ width, height });
        const problems: string[] = [];
        page.on('console', (message) => {
          if (message.type() === 'error') problems.push(`console: ${message.text()}`);
        });
        page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
        page.on('requestfailed', (request) => problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`));
        page.on('response', (response) => {
          if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
        });
        const origins = new Set<string>();
        page.on('request', (request) => origins.add(new URL(request.url()).origin));

        await page.goto(`${stack.baseUrl}/`, { waitUntil: 'networkidle' });
        await page.locator('#dynamic-content[data-state="loaded"]').waitFor({ timeout: 10_000 });
        expect(await page.locator('#dynamic-content').textContent()).toBe('Hello, World!');

        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}-top.png` });
        // Sections fade in as they scroll into view: scroll through once so the full-page shot shows them.
        await page.evaluate(async () => {
          for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight / 2) {
            window.scrollTo(0, y);
            await new Promise((resolve) => setTimeout(resolve, 60));
          }
          window.scrollTo(0, 0);
        });
        await page.waitForTimeout(800);
        await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}.png`, fullPage: true });
        expect(problems).toEqual([]);
        // Nothing leaves the site: no CDN, no font service.
        expect([...origins]).toEqual([stack.baseUrl]);
      } finally {
        await browser.close();
      }
    });
  });

  describe('shutdown', () => {
    it('stops the back-end on SIGTERM with exit code 0, well inside the stop timeout', async () => {
      const [backEnd] = await stack.containers('back-end');
      const started = Date.now();
      const stopped = await run('docker', ['stop', '--time', '10', backEnd!]);
      const elapsedMs = Date.now() - started;
      expect(stopped.code).toBe(0);
      expect(await stack.inspect(backEnd!, '.State.ExitCode')).toBe(0);
      expect(elapsedMs).toBeLessThan(8000);
    });

    it('answers /api with a short JSON 503 while no back-end runs, and still serves the page', async () => {
      const started = Date.now();
      const res = await fetch(`${stack.baseUrl}/api/hello`);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
      expect((await fetch(`${stack.baseUrl}/`)).status).toBe(200);
    });

    it('leaves no container or network of the stack after down', async () => {
      expect((await stack.containers()).length).toBeGreaterThan(0);
      expect((await stack.networks()).length).toBeGreaterThan(0);
      await stack.down();
      expect(await stack.containers()).toEqual([]);
      expect(await stack.networks()).toEqual([]);
    });
  });
});
