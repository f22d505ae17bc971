/**
 * The whole stack in real containers: built from the Dockerfiles, started with Compose, checked
 * through the published proxy port from the host and in headless Chromium, then taken down.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { browserSkipReason, launchBrowser, sendContactForm } from './browser.js';
import { REPO_ROOT, freePort, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { HOSTILE_REQUESTS, sendRaw, slowLoris } from './hostile-requests.js';

const skipReason = inject('stackSkipReason');
const ARTIFACTS = `${REPO_ROOT}artifacts/screenshots`;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

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
    socket.once('error', (error: NodeJS.ErrnoException) =>
      resolve(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? 'error')),
    );
  });
}

describe.skipIf(skipReason !== '').sequential('the stack in containers', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // A rate limit low enough to hit on purpose, high enough for the other tests' bursts.
    stack = new TestStack('softy-pinko-e2e', await freePort(), {
      API_RATE_LIMIT: '20r/s',
      API_RATE_BURST: '50',
    });
    await stack.down(); // leftovers of an interrupted run
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  /** A service's log lines that are JSON objects, parsed. */
  async function jsonLogLines(service: string): Promise<Record<string, unknown>[]> {
    const [id] = await stack.containers(service);
    const { stdout } = await run('docker', ['logs', id!]);
    return stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** A service's log line for a request ID; both logs are buffered (flushed within a second), so it waits up to 5 s. */
  async function logLine(
    service: string,
    key: string,
    requestId: string,
  ): Promise<Record<string, unknown> | undefined> {
    for (let waited = 0; waited < 5000; waited += 250) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const line = (await jsonLogLines(service)).find((l) => l[key] === requestId);
      if (line) return line;
    }
    return undefined;
  }

  const proxyLogLine = (requestId: string) => logLine('proxy', 'request_id', requestId);

  /** The image a service's container runs. */
  async function imageOf(service: string): Promise<string> {
    const [id] = await stack.containers(service);
    return stack.inspect<string>(id!, '.Config.Image');
  }

  /**
   * Runs a service's image on its own, as Compose would (read-only, /tmp a tmpfs) but on no network, then
   * gives `use` its container ID once /healthz answers on `port`; the container is removed afterwards.
   */
  async function alone(service: string, args: string[], port: number, use: (id: string) => Promise<void>) {
    const started = await run('docker', [
      'run',
      '--detach',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--network',
      'none',
      ...args,
      await imageOf(service),
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();
    try {
      for (let waited = 0; (await curl(id, `http://127.0.0.1:${port}/healthz`)).status !== 200; waited += 250) {
        if (waited > 10_000)
          throw new Error(`${service} alone: no /healthz (${(await run('docker', ['logs', id])).stderr})`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await use(id);
    } finally {
      await run('docker', ['rm', '--force', id]);
    }
  }

  /** A GET with curl inside a container: the status and the body. */
  async function curl(id: string, url: string, headers: string[] = []): Promise<{ status: number; body: string }> {
    const { stdout } = await run('docker', [
      'exec',
      id,
      'curl',
      '--silent',
      '--write-out',
      '\n%{http_code}',
      ...headers.flatMap((header) => ['--header', header]),
      url,
    ]);
    const end = stdout.lastIndexOf('\n');
    return { status: Number(stdout.slice(end + 1)), body: stdout.slice(0, Math.max(end, 0)) };
  }

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
      // Nothing blocks the first paint: the CSS is inline and no stylesheet is linked; the one script is an
      // inline module that imports the bundle after the first paint (both allowed by hash, see the headers).
      expect(html).toMatch(/<style>[^<]+<\/style>\s*<\/head>/);
      expect(html).not.toMatch(/<link[^>]+rel="?(stylesheet|preload)/);
      expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module">']);
      expect(html).toMatch(/<script type="module">const load=\(\)=>import\("\/assets\/main-[\w-]+\.js"\)/);
    });

    it('serves hashed assets with their MIME type, gzip and a one-year immutable cache', async () => {
      // The page's script, and the stylesheet the 404 page links for the rules it does not inline.
      const pages = [await fetch(`${stack.baseUrl}/`), await fetch(`${stack.baseUrl}/no/such/page`)];
      const html = (await Promise.all(pages.map((page) => page.text()))).join('\n');
      const assets = [...html.matchAll(/(?:src=|href=|import\()"(\/assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThanOrEqual(2);
      for (const asset of assets) {
        const res = await fetch(`${stack.baseUrl}${asset}`, { headers: { 'accept-encoding': 'gzip' } });
        expect(res.status, asset).toBe(200);
        expect(res.headers.get('content-type'), asset).toMatch(
          asset.endsWith('.css') ? /^text\/css/ : /^(application|text)\/javascript/,
        );
        expect(res.headers.get('cache-control'), asset).toBe('public, max-age=31536000, immutable');
        expect(res.headers.get('content-encoding'), asset).toBe('gzip');
      }
    });

    it('keeps one gzipped and one plain copy of an asset, however a client spells Accept-Encoding', async () => {
      const html = await (await fetch(`${stack.baseUrl}/`)).text();
      const asset = /import\("(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(asset).toBeDefined();
      // In order: each request after the first of its kind spells Accept-Encoding differently, and must
      // still be answered from the copy the one before it left (no upstream in the log line).
      const asks = [
        { id: 'e2e-cache-chrome', acceptEncoding: 'gzip, deflate, br, zstd', gzip: true, fromCache: false },
        { id: 'e2e-cache-gzip', acceptEncoding: 'gzip', gzip: true, fromCache: true },
        { id: 'e2e-cache-q', acceptEncoding: 'br;q=1, GZIP;q=0.5', gzip: true, fromCache: true },
        { id: 'e2e-cache-identity', acceptEncoding: 'identity', gzip: false, fromCache: false },
        { id: 'e2e-cache-refused', acceptEncoding: 'gzip;q=0, identity', gzip: false, fromCache: true },
      ];
      const bodies = new Set<string>();
      for (const ask of asks) {
        const res = await fetch(`${stack.baseUrl}${asset}`, {
          headers: { 'accept-encoding': ask.acceptEncoding, 'x-request-id': ask.id },
        });
        expect(res.status, ask.id).toBe(200);
        expect(res.headers.get('content-encoding'), ask.id).toBe(ask.gzip ? 'gzip' : null);
        // Browsers' caches still learn the answer depends on Accept-Encoding, and are told once.
        expect(res.headers.get('vary'), ask.id).toBe('Accept-Encoding');
        bodies.add(await res.text()); // fetch decodes gzip: every copy must read the same
      }
      expect(bodies.size).toBe(1);
      for (const ask of asks.filter((a) => a.fromCache)) {
        expect((await proxyLogLine(ask.id))?.upstream_addr, ask.id).toBe('');
      }
      // A URL ending in "gzip" must not find a gzip copy of the URL without it: the key keeps the two apart.
      await fetch(`${stack.baseUrl}${asset}?e2e-key`, { headers: { 'accept-encoding': 'gzip' } });
      const plain = await fetch(`${stack.baseUrl}${asset}?e2e-keygzip`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.headers.get('content-encoding')).toBeNull();
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

    it('keeps /.well-known/ out of the dot-file rule, so an ACME challenge can be served', async () => {
      // Nothing there in the image: the page's own 404 through the proxy.
      const missing = await fetch(`${stack.baseUrl}/.well-known/acme-challenge/x`);
      expect(missing.status).toBe(404);
      expect(await missing.text()).toMatch(/Softy\s*Pinko/);
      // A challenge where certbot's webroot mode would put it: served, while dotfiles below it are not.
      const webroot = mkdtempSync(join(tmpdir(), 'softy-pinko-acme-'));
      try {
        mkdirSync(join(webroot, 'acme-challenge'));
        writeFileSync(join(webroot, 'acme-challenge', 'e2e-token'), 'e2e-token.thumbprint');
        writeFileSync(join(webroot, 'acme-challenge', '.secret'), 'never served');
        for (const path of [webroot, join(webroot, 'acme-challenge')]) chmodSync(path, 0o755);
        const volume = `${webroot}:/usr/share/nginx/html/.well-known:ro`;
        await alone('front-end', ['--volume', volume], 9000, async (id) => {
          const base = 'http://127.0.0.1:9000/.well-known/acme-challenge';
          expect(await curl(id, `${base}/e2e-token`)).toEqual({ status: 200, body: 'e2e-token.thumbprint' });
          expect((await curl(id, `${base}/.secret`)).status).toBe(404);
        });
      } finally {
        rmSync(webroot, { recursive: true, force: true });
      }
    });

    it('sends /api and everything under /api/ to the API, but not /apiary', async () => {
      const api = await fetch(`${stack.baseUrl}/api`);
      expect(api.status).toBe(404);
      expect(api.headers.get('x-served-by')).not.toBeNull();
      expect(await api.json()).toMatchObject({ statusCode: 404 });
      const apiary = await fetch(`${stack.baseUrl}/apiary`);
      expect(apiary.status).toBe(404);
      // Served by a front-end replica, not by the back-end that answered /api.
      expect(apiary.headers.get('x-served-by')).not.toBe(api.headers.get('x-served-by'));
      expect(apiary.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(await apiary.text()).toMatch(/Softy\s*Pinko/);
    });

    it('answers /healthz whatever the Host (the kubelet sends the pod IP), nothing else to strangers', async () => {
      const ask = (path: string, host: string) =>
        sendRaw(stack.proxyPort, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(await ask('/healthz', '10.1.2.3')).toBe(200);
      expect(await ask('/healthz', 'evil.example')).toBe(200);
      expect(await ask('/', '10.1.2.3')).toBe(0);
      expect(await ask('/api/hello', '10.1.2.3')).toBe(0);
      expect(await ask('/', 'localhost')).toBe(200);
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

    it("allows each page's inline CSS by its SHA-256 in one strict policy, the same from the proxy and the front-end", async () => {
      const policyOf = (headers: Headers): string => headers.get('content-security-policy') ?? '';
      const hashes = (html: string, tag: string): string[] =>
        [...html.matchAll(new RegExp(`<${tag}[^>]*>([^<]+)</${tag}>`, 'g'))].map(
          ([, text]) => `'sha256-${createHash('sha256').update(text!).digest('base64')}'`,
        );
      const sources = (policy: string, directive: string): string[] | undefined =>
        new RegExp(`(?:^|; )${directive} ([^;]+)`).exec(policy)?.[1]?.split(' ');
      const policies = new Set<string>();
      for (const path of ['/', '/no/such/page']) {
        // Twice: the second answer comes from the proxy's cache, and must carry the same single policy.
        for (const round of [1, 2]) {
          const res = await fetch(`${stack.baseUrl}${path}`);
          const policy = policyOf(res.headers);
          const html = await res.text();
          expect(hashes(html, 'style'), path).toHaveLength(1);
          // One header, not the front-end's and the proxy's side by side (fetch joins those with ", ").
          expect(policy, `${path} #${round}`).not.toContain(',');
          expect(policy).not.toContain('unsafe');
          for (const [tag, directive] of [
            ['style', 'style-src'],
            ['script', 'script-src'],
          ] as const)
            expect(sources(policy, directive), `${path} ${directive}`).toEqual(
              expect.arrayContaining(["'self'", ...hashes(html, tag)]),
            );
          policies.add(policy);
        }
      }
      // The proxy's own answers (the API's) and the front-end's, asked directly, name the same hashes.
      policies.add(policyOf((await fetch(`${stack.baseUrl}/api/hello`)).headers));
      const [proxy] = await stack.containers('proxy');
      const direct = await run('docker', [
        'exec',
        proxy!,
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-D',
        '-',
        'http://front-end:9000/',
      ]);
      policies.add(/^content-security-policy: (.*?)\r?$/im.exec(direct.stdout)?.[1] ?? 'none from the front-end');
      expect([...policies]).toHaveLength(1);
    });

    it('forwards the client address and request ID to the back-end, which logs them as JSON', async () => {
      await fetch(`${stack.baseUrl}/api/hello`, {
        headers: { 'x-request-id': 'e2e-log-check', 'x-forwarded-for': '203.0.113.9' },
      });
      const line = await logLine('back-end', 'reqId', 'e2e-log-check');
      expect(line).toMatchObject({ msg: 'request', method: 'GET', url: '/api/hello', status: 200 });
      // The proxy is the edge: a client-supplied X-Forwarded-For is replaced, not trusted.
      expect(line?.remoteAddress).not.toBe('203.0.113.9');
      expect(line?.remoteAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    });

    it("serves nginx's stub_status for the metrics exporter on the internal port 8080 only", async () => {
      const [proxy] = await stack.containers('proxy');
      const inside = await curl(proxy!, 'http://127.0.0.1:8080/stub_status');
      expect(inside.status).toBe(200);
      expect(inside.body).toMatch(/^Active connections: \d+/);
      // Through the published port it is just another path of the page.
      expect((await fetch(`${stack.baseUrl}/stub_status`)).status).toBe(404);
    });

    it('ignores X-Forwarded-For with TRUSTED_PROXIES off (the default): it logs the peer, not the claim', async () => {
      await fetch(`${stack.baseUrl}/api/hello`, {
        headers: { 'x-request-id': 'e2e-xff-ignored', 'x-forwarded-for': '203.0.113.10' },
      });
      const line = await proxyLogLine('e2e-xff-ignored');
      expect(line?.status).toBe(200);
      expect(line?.remote_addr).not.toBe('203.0.113.10');
      expect(line?.remote_addr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    });

    it('logs each request as one JSON line naming the upstream that served it', async () => {
      await fetch(`${stack.baseUrl}/api/hello`, { headers: { 'x-request-id': 'e2e-proxy-log' } });
      const line = await proxyLogLine('e2e-proxy-log');
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
        expect(await stack.inspect(id!, '.NetworkSettings.Ports'), service).toSatisfy(
          (ports: Record<string, unknown[] | null>) =>
            Object.values(ports ?? {}).every((bindings) => bindings === null || bindings.length === 0),
        );
      }
      const [proxy] = await stack.containers('proxy');
      const ports = await stack.inspect<Record<string, { HostPort: string }[] | null>>(
        proxy!,
        '.NetworkSettings.Ports',
      );
      expect(Object.keys(ports).filter((port) => (ports[port] ?? []).length > 0)).toEqual(['80/tcp']);
      expect(ports['80/tcp']?.[0]?.HostPort).toBe(String(stack.proxyPort));
    });

    it('ships no compiler, dev dependency, TypeScript source or source map in the runtime images', async () => {
      const [backEnd] = await stack.containers('back-end');
      const [frontEnd] = await stack.containers('front-end');
      const listing = async (id: string, dir: string) =>
        (await run('docker', ['exec', id, 'find', dir, '-maxdepth', '8'])).stdout.split('\n').filter(Boolean);
      const backEndFiles = await listing(backEnd!, '/app');
      expect(backEndFiles).toContain('/app/dist/server.js');
      expect(backEndFiles).toContain('/app/node_modules/fastify');
      const frontEndFiles = await listing(frontEnd!, '/usr/share/nginx/html');
      expect(frontEndFiles).toContain('/usr/share/nginx/html/index.html');
      for (const file of [...backEndFiles, ...frontEndFiles]) {
        expect(file).not.toMatch(
          /\.map$|\.ts$|\/node_modules\/(typescript|tsx|esbuild|vite|vitest|@types)(\/|$)|^\/app\/src(\/|$)/,
        );
      }
    });

    it('runs every service read-only, with no capabilities or new privileges, within resource limits', async () => {
      for (const service of ['front-end', 'back-end', 'proxy']) {
        const [id] = await stack.containers(service);
        const host = await stack.inspect<{
          ReadonlyRootfs: boolean;
          CapDrop: string[];
          SecurityOpt: string[];
          Memory: number;
          PidsLimit: number;
          LogConfig: { Type: string; Config: Record<string, string> };
        }>(id!, '.HostConfig');
        expect(host.ReadonlyRootfs, service).toBe(true);
        expect(host.CapDrop, service).toContain('ALL');
        expect(host.SecurityOpt, service).toContain('no-new-privileges:true');
        expect(host.Memory, service).toBeGreaterThan(0);
        expect(host.PidsLimit, service).toBeGreaterThan(0);
        // Rotated, so a long-running stack cannot fill the disk with request lines.
        expect(host.LogConfig, service).toEqual({
          Type: 'local',
          Config: { 'max-size': '10m', 'max-file': '3', compress: 'false' },
        });
        const write = await run('docker', ['exec', id!, 'touch', '/etc/softy-pinko-write-test']);
        expect(write.code, `${service} could write to its root filesystem`).not.toBe(0);
      }
    });

    it('keeps the front-end and back-end on internal networks only; the proxy alone joins the edge', async () => {
      // Docker gives a container on an `internal` network no way out to the host's network or the
      // internet; proven here from Docker's own record of each network rather than by sending packets.
      const internal = async (id: string) => {
        const networks = Object.keys(await stack.inspect<Record<string, unknown>>(id, '.NetworkSettings.Networks'));
        return Promise.all(
          networks.map(async (name) => [name, await stack.inspect<boolean>(name, '.Internal')] as const),
        );
      };
      for (const service of ['front-end', 'back-end']) {
        const [id] = await stack.containers(service);
        const networks = await internal(id!);
        expect(networks.length, service).toBeGreaterThan(0);
        for (const [name, isInternal] of networks) expect(isInternal, `${service} on ${name}`).toBe(true);
      }
      const [proxy] = await stack.containers('proxy');
      const proxyNetworks = await internal(proxy!);
      expect(proxyNetworks.map(([, isInternal]) => isInternal).sort()).toEqual([false, true]);
    });

    it('runs every service as a non-root user', async () => {
      for (const service of ['front-end', 'back-end', 'proxy']) {
        const [id] = await stack.containers(service);
        const { stdout } = await run('docker', ['exec', id!, 'id', '-u']);
        expect(stdout.trim(), service).not.toBe('0');
      }
    });

    it("builds every image with a numeric user, so Kubernetes' runAsNonRoot can check it", async () => {
      for (const service of ['front-end', 'back-end', 'proxy']) {
        const { stdout } = await run('docker', [
          'image',
          'inspect',
          '--format',
          '{{.Config.User}}',
          await imageOf(service),
        ]);
        expect(stdout.trim(), service).toMatch(/^[1-9]\d*(:\d+)?$/);
      }
    });
  });

  describe.skipIf(browserSkipReason() !== '')('in headless Chromium', () => {
    it.each([
      ['phone', 390, 844],
      ['desktop', 1366, 900],
    ])(
      'shows "Hello, World!" in #dynamic-content on a %s, with no console error and no failed request',
      async (name, width, height) => {
        const browser = await launchBrowser();
        try {
          const page = await browser.context.newPage();
          await page.setViewportSize({ width, height });
          const problems: string[] = [];
          page.on('console', (message) => {
            if (message.type() === 'error') problems.push(`console: ${message.text()}`);
          });
          page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
          page.on('requestfailed', (request) =>
            problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`),
          );
          page.on('response', (response) => {
            if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
          });
          const origins = new Set<string>();
          page.on('request', (request) => origins.add(new URL(request.url()).origin));

          let transferredBytes = 0;
          let requests = 0;
          page.on('requestfinished', async (request) => {
            requests += 1;
            const sizes = await request.sizes();
            transferredBytes += sizes.responseBodySize + sizes.responseHeadersSize;
          });

          await page.goto(`${stack.baseUrl}/`, { waitUntil: 'networkidle' });
          await page.locator('#dynamic-content[data-state="loaded"]').waitFor({ timeout: 10_000 });
          expect(await page.locator('#dynamic-content').textContent()).toBe('Hello, World!');

          mkdirSync(ARTIFACTS, { recursive: true });
          await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}-top.png` });
          // Sections fade in as they scroll into view: scroll through once so the full-page shot shows them.
          await page.evaluate(async () => {
            for (let y = 0; y < document.documentElement.scrollHeight; y += window.innerHeight / 2) {
              // 'instant': the page asks for smooth scrolling, which would not get there in 60 ms.
              window.scrollTo({ top: y, behavior: 'instant' });
              await new Promise((resolve) => setTimeout(resolve, 60));
            }
            window.scrollTo({ top: 0, behavior: 'instant' });
          });
          await page.waitForTimeout(800);
          // Every section held back below the fold was revealed on the way down.
          expect(await page.locator('.is-pending').count()).toBe(0);
          await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}.png`, fullPage: true });
          expect(problems).toEqual([]);
          // Nothing leaves the site: no CDN, no font service.
          expect([...origins]).toEqual([stack.baseUrl]);
          // The first load's budget: at most 12 requests and 100 KB over the wire, compressed.
          console.log(`[budget] ${name}: ${requests} requests, ${(transferredBytes / 1024).toFixed(1)} KB transferred`);
          expect(requests).toBeLessThanOrEqual(12);
          expect(transferredBytes).toBeLessThanOrEqual(100 * 1024);

          // Fits the width: no sideways scrolling.
          expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
          // Keyboard first: the first Tab lands on the skip link, with a visible focus ring.
          await page.keyboard.press('Tab');
          const focused = await page.evaluate(() => {
            const el = document.activeElement as HTMLElement;
            const style = getComputedStyle(el);
            return { href: el.getAttribute('href'), outline: `${style.outlineStyle} ${style.outlineWidth}` };
          });
          expect(focused.href).toBe('#main');
          expect(focused.outline).not.toMatch(/^none|\s0px$/);

          // axe-core, evaluated through the DevTools protocol (the page's CSP forbids injected scripts).
          await page.evaluate(axeSource);
          const violations = await page.evaluate(async () => {
            const { violations } = await (
              window as unknown as { axe: { run(): Promise<{ violations: { id: string; nodes: unknown[] }[] }> } }
            ).axe.run();
            return violations.map((violation) => `${violation.id} (${violation.nodes.length})`);
          });
          expect(violations).toEqual([]);
        } finally {
          await browser.close();
        }
      },
    );
  });

  describe.skipIf(browserSkipReason() !== '')('the first paint', () => {
    it('shows the hero from the document alone, in the place and style it keeps once everything has loaded', async () => {
      const browser = await launchBrowser();
      try {
        const hero = async (documentOnly: boolean) => {
          const page = await browser.context.newPage();
          await page.setViewportSize({ width: 390, height: 844 });
          // Without its script, stylesheets or API: what the first frame can show.
          if (documentOnly)
            await page.route('**/*', (route) =>
              route.request().resourceType() === 'document' ? route.continue() : route.abort(),
            );
          await page.goto(`${stack.baseUrl}/`, { waitUntil: documentOnly ? 'load' : 'networkidle' });
          const look = await page.locator('#hero-title').evaluate((title) => {
            const { x, y, width, height } = title.getBoundingClientRect();
            const style = getComputedStyle(title);
            return { box: [x, y, width, height], font: style.font, color: style.color, opacity: style.opacity };
          });
          await page.close();
          return look;
        };
        const alone = await hero(true);
        expect(alone.font).toMatch(/^300 /); // the hero's light weight, not the browser's bold h1
        expect(alone).toEqual(await hero(false));
      } finally {
        await browser.close();
      }
    });
  });

  describe('hostile input at the edge', () => {
    const restartsBefore = new Map<string, string>();
    const restartState = (id: string) =>
      stack
        .inspect<string>(id, '.RestartCount')
        .then(async (count) => `${count}@${await stack.inspect<string>(id, '.State.StartedAt')}`);

    beforeAll(async () => {
      for (const id of await stack.containers()) restartsBefore.set(id, await restartState(id));
    });

    it.each(HOSTILE_REQUESTS.map((request) => [`${request.category}: ${request.name}`, request] as const))(
      '%s → answered with the expected status',
      async (_name, request) => {
        expect(await sendRaw(stack.proxyPort, request.raw)).toBe(request.expect);
      },
    );

    it('drops a slow-loris client that trickles its headers, within the 10 s header timeout', async () => {
      const openMs = await slowLoris(stack.proxyPort, 1000, 30_000);
      console.log(`[hostile] slow loris dropped after ${openMs} ms`);
      expect(openMs).toBeLessThan(15_000);
    });

    it('leaves every service healthy and no container restarted', async () => {
      const categories = new Map<string, number>();
      for (const { category } of HOSTILE_REQUESTS) categories.set(category, (categories.get(category) ?? 0) + 1);
      console.log(
        `[hostile] ${HOSTILE_REQUESTS.length} raw requests`,
        `(${[...categories].map(([c, n]) => `${c} ${n}`).join(', ')}) and 1 slow-loris client`,
      );
      await stack.waitHealthy(30_000);
      for (const [id, before] of restartsBefore) expect(await restartState(id), id).toBe(before);
      expect(await (await fetch(`${stack.baseUrl}/api/hello`)).text()).toBe('Hello, World!');
    });
  });

  describe('rate limiting', () => {
    it('answers an API flood from one address with JSON 429s and Retry-After, and never limits the page', async () => {
      const api = await Promise.all(Array.from({ length: 150 }, () => fetch(`${stack.baseUrl}/api/hello`)));
      const limited = api.filter((res) => res.status === 429);
      console.log(
        `[rate limit] 150 parallel API requests: ${api.length - limited.length} served, ${limited.length} limited`,
      );
      expect(limited.length).toBeGreaterThan(0);
      expect(api.filter((res) => res.status !== 429 && res.status !== 200)).toEqual([]);
      expect(limited[0]!.headers.get('retry-after')).toBe('1');
      expect(limited[0]!.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await limited[0]!.json()).toMatchObject({ statusCode: 429, error: 'Too Many Requests' });

      const page = await Promise.all(Array.from({ length: 150 }, () => fetch(`${stack.baseUrl}/`)));
      expect(page.map((res) => res.status).filter((status) => status !== 200)).toEqual([]);
      // Let the bucket refill (50 at 20/s) before the next tests use the API.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
    });

    it('refuses to start with a malformed limit, saying why', async () => {
      const [proxy] = await stack.containers('proxy');
      const image = await stack.inspect<string>(proxy!, '.Config.Image');
      const started = await run('docker', ['run', '--rm', '--env', 'API_RATE_LIMIT=lots', image]);
      expect(started.code).toBe(64);
      expect(started.stderr).toContain('API_RATE_LIMIT must look like 10r/s');
    });

    it('limits each visitor named by X-Forwarded-For when the peer is in TRUSTED_PROXIES', async () => {
      const limit = ['--env', 'API_RATE_LIMIT=1r/m', '--env', 'API_RATE_BURST=1', '--env', 'RESOLVER=127.0.0.1'];
      // Two visitors behind one balancer (curl on 127.0.0.1), 1 request a minute plus a burst of 1; no back-end: 503.
      const statuses = async (id: string) => {
        const ask = async (visitor: string) =>
          (await curl(id, 'http://127.0.0.1/api/hello', [`X-Forwarded-For: ${visitor}, 127.0.0.1`])).status;
        return [await ask('203.0.113.1'), await ask('203.0.113.1'), await ask('203.0.113.1'), await ask('203.0.113.2')];
      };
      await alone('proxy', [...limit, '--env', 'TRUSTED_PROXIES=127.0.0.0/8'], 80, async (id) => {
        expect(await statuses(id)).toEqual([503, 503, 429, 503]);
        await new Promise((resolve) => setTimeout(resolve, 1500)); // the access log's flush
        const { stdout } = await run('docker', ['logs', id]);
        expect(stdout).toContain('"remote_addr":"203.0.113.1"');
        expect(stdout).toContain('"remote_addr":"203.0.113.2"');
      });
      // Off (the default): one bucket for everyone behind the balancer.
      await alone('proxy', limit, 80, async (id) => {
        expect(await statuses(id)).toEqual([503, 503, 429, 429]);
      });
    });

    it('takes the upstream host names and the DNS server from the environment, else from resolv.conf', async () => {
      const [proxy] = await stack.containers('proxy');
      const rendered = (await run('docker', ['exec', proxy!, 'cat', '/tmp/nginx/conf.d/default.conf'])).stdout;
      // Under Compose: Docker's embedded DNS, and the services' names.
      expect(rendered).toContain('resolver 127.0.0.11 valid=5s');
      expect(rendered).toContain('server front-end:9000 resolve;');
      expect(rendered).toContain('server back-end:5252 resolve;');
      const kubernetes = await run('docker', [
        'run',
        '--rm',
        '--env',
        'FRONT_END_HOST=front-end.softy-pinko.svc.cluster.local',
        '--env',
        'BACK_END_HOST=back-end.softy-pinko.svc.cluster.local',
        '--env',
        'RESOLVER=10.96.0.10',
        await imageOf('proxy'),
        'nginx',
        '-c',
        '/tmp/nginx/nginx.conf',
        '-T',
      ]);
      expect(kubernetes.code, kubernetes.stderr).toBe(0);
      expect(kubernetes.stdout).toContain('resolver 10.96.0.10 valid=5s');
      expect(kubernetes.stdout).toContain('server front-end.softy-pinko.svc.cluster.local:9000 resolve;');
      expect(kubernetes.stdout).toContain('server back-end.softy-pinko.svc.cluster.local:5252 resolve;');
      const bad = await run('docker', [
        'run',
        '--rm',
        '--env',
        // "bad" is made of hex digits: it must not pass for an IPv6 address.
        'TRUSTED_PROXIES=10.0.0.0/8 bad',
        await imageOf('proxy'),
      ]);
      expect(bad.code).toBe(64);
      expect(bad.stderr).toContain('TRUSTED_PROXIES must be addresses or CIDRs');
    });
  });

  describe.skipIf(browserSkipReason() !== '')(
    'the page for people who ask for less motion, and on the narrowest and widest screens',
    () => {
      it.each([360, 1920])(
        'shows every section at once under prefers-reduced-motion, without sideways scrolling at %i px',
        async (width) => {
          const browser = await launchBrowser();
          try {
            const page = await browser.context.newPage();
            await page.setViewportSize({ width, height: 800 });
            await page.emulateMedia({ reducedMotion: 'reduce' });
            await page.goto(`${stack.baseUrl}/`, { waitUntil: 'networkidle' });
            expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
            // Nothing waits for a scroll to fade in: no element is held back, and the counters show their final values.
            expect(await page.locator('.is-pending').count()).toBe(0);
            expect(await page.locator('[data-count]').first().textContent()).toBe('12,480');
          } finally {
            await browser.close();
          }
        },
      );
    },
  );

  describe('the contact form through the proxy', () => {
    const contact = () => `${stack.baseUrl}/api/contact`;
    const postJson = (body: unknown) =>
      fetch(contact(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const storedMessages = async (): Promise<{ id: string; name: string }[]> => {
      const [backEnd] = await stack.containers('back-end');
      const { stdout } = await run('docker', ['exec', backEnd!, 'cat', '/data/contact-messages.jsonl']);
      return stdout
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { id: string; name: string });
    };

    it('accepts a valid message with 201 and stores it', async () => {
      const res = await postJson({ name: 'Ada', email: 'ada@example.com', message: 'Hello from the stack suite' });
      expect(res.status).toBe(201);
      const { id } = (await res.json()) as { id: string };
      expect((await storedMessages()).map((m) => m.id)).toContain(id);
    });

    it('answers invalid input with 400 listing each invalid field', async () => {
      const res = await postJson({ name: '', email: 'not-an-email', message: 'x'.repeat(2001) });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { fields: Record<string, string> };
      expect(Object.keys(body.fields).sort()).toEqual(['email', 'message', 'name']);
    });

    it('refuses a body over 16 KB with a JSON 413 at the proxy', async () => {
      const res = await postJson({ name: 'Big', email: 'big@example.com', message: 'x'.repeat(17 * 1024) });
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toMatchObject({ statusCode: 413 });
    });

    it('answers a plain form post (no JavaScript) with 303 back to the page', async () => {
      const res = await fetch(contact(), {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
        },
        body: new URLSearchParams({
          name: 'Grace',
          email: 'grace@example.com',
          message: 'Sent without JavaScript',
        }).toString(),
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/?contact=sent#contact');
      expect((await storedMessages()).map((m) => m.name)).toContain('Grace');
    });

    it('keeps accepted messages when the back-end container restarts', async () => {
      const before = await storedMessages();
      expect(before.length).toBeGreaterThan(0);
      const [backEnd] = await stack.containers('back-end');
      expect((await run('docker', ['restart', backEnd!])).code).toBe(0);
      await stack.waitHealthy();
      expect(await storedMessages()).toEqual(before);
    });

    it.skipIf(browserSkipReason() !== '').each([
      ['with JavaScript', true],
      ['without JavaScript', false],
    ])('works in Chromium %s', async (_name, javaScriptEnabled) => {
      const browser = await launchBrowser({ javaScriptEnabled });
      try {
        const page = await browser.context.newPage();
        await page.goto(`${stack.baseUrl}/#contact`);
        const sender = `Browser ${javaScriptEnabled ? 'JS' : 'no-JS'} ${Date.now()}`;
        await sendContactForm(page, sender, 'Typed into the real form.');
        if (javaScriptEnabled) {
          // Shown inline, without leaving the page.
          await page.locator('.form-status[data-state="sent"]').waitFor({ timeout: 10_000 });
          expect(page.url()).toBe(`${stack.baseUrl}/#contact`);
        } else {
          await page.waitForURL(`${stack.baseUrl}/?contact=sent#contact`);
        }
        expect((await storedMessages()).map((m) => m.name)).toContain(sender);
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
      const filter = `label=com.docker.compose.project=${stack.project}`;
      const networks = async () =>
        (await run('docker', ['network', 'ls', '--quiet', '--filter', filter])).stdout.split('\n').filter(Boolean);
      expect((await stack.containers()).length).toBeGreaterThan(0);
      expect((await networks()).length).toBeGreaterThan(0);
      await stack.down();
      expect(await stack.containers()).toEqual([]);
      expect(await networks()).toEqual([]);
    });
  });
});
