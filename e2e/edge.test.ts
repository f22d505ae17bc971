/**
 * The edge as a cloud meets it, with real containers: nginx sizes its workers from the container's CPU quota
 * (both nginx images), X-Forwarded-Proto and HSTS behind a TLS-terminating proxy, the back-end believing only
 * the proxy's forwarded headers, and stub_status kept on loopback where the exporter is a sidecar.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, replicaId, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';

const skipReason = inject('stackSkipReason');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** `docker run` of an image as Compose runs it: a read-only root, /tmp a tmpfs, no capabilities. */
const dockerRun = (args: string[]) =>
  run('docker', ['run', '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', ...args]);

describe.skipIf(skipReason !== '').sequential('the edge', () => {
  let stack: TestStack;
  let proxy: string;
  let frontEnd: string;
  let backEnd: string;

  beforeAll(async () => {
    // The proxy trusts only its own loopback: a request sent from inside it stands for a Gateway's.
    stack = new TestStack('softy-pinko-edge', await freePort(), { TRUSTED_PROXIES: '127.0.0.1' });
    await stack.down();
    await stack.up();
    proxy = (await stack.containers('proxy'))[0]!;
    frontEnd = (await stack.containers('front-end'))[0]!;
    backEnd = (await stack.containers('back-end'))[0]!;
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  /** curl inside a container: the answer's status line and headers. */
  const curl = async (container: string, url: string, headers: string[] = []) => {
    const result = await run('docker', [
      'exec',
      container,
      'curl',
      '--silent',
      '--max-time',
      '5',
      '--output',
      '/dev/null',
      '--dump-header',
      '-',
      ...headers.flatMap((h) => ['--header', h]),
      url,
    ]);
    return { code: result.code, headers: result.stdout.toLowerCase() };
  };

  /** The back-end's request line for a request ID, once it is written. */
  const backEndLine = async (requestId: string): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 50; i++) {
      const { stdout } = await run('docker', ['logs', backEnd]);
      const line = stdout.split('\n').find((l) => l.includes(`"reqId":"${requestId}"`) && l.includes('"request"'));
      if (line) return JSON.parse(line) as Record<string, unknown>;
      await sleep(200);
    }
    throw new Error(`no back-end log line for ${requestId}`);
  };

  describe('nginx workers follow the CPU quota', () => {
    /** Starts an image as Compose does, waits for its workers, and reports their number and its memory. */
    const workersOf = async (image: string, cpus: string | undefined): Promise<number> => {
      const started = await dockerRun(['--detach', ...(cpus ? ['--cpus', cpus] : []), image]);
      expect(started.code, started.stderr).toBe(0);
      const id = started.stdout.trim();
      try {
        // nginx names its processes: count the workers from inside, with the container's own tools.
        const count = async () => {
          const script = "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\000' '\\n' | grep -c '^nginx: worker process'";
          return Number((await run('docker', ['exec', id, 'sh', '-c', script])).stdout.trim()) || 0;
        };
        for (let i = 0; i < 50 && (await count()) === 0; i++) await sleep(200);
        // Workers start together; a moment more makes sure none is still on its way.
        await sleep(500);
        const workers = await count();
        const memory = await run('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', id]);
        console.log(`[edge] ${image} --cpus ${cpus ?? '(none)'}: ${workers} workers, memory ${memory.stdout.trim()}`);
        return workers;
      } finally {
        await run('docker', ['rm', '--force', id]);
      }
    };

    it.each(['proxy', 'front-end'])('%s: 1 worker with --cpus 0.5 and --cpus 1, one per CPU without', async (name) => {
      const image = `softy-pinko-${name}:e2e`;
      const cpus = Number((await run('nproc', [])).stdout.trim());
      expect(await workersOf(image, '0.5')).toBe(1);
      expect(await workersOf(image, '1')).toBe(1);
      expect(await workersOf(image, undefined)).toBe(cpus);
    });

    it('an explicit NGINX_WORKER_PROCESSES wins over the quota, and a bad one stops the start', async () => {
      const explicit = await dockerRun(
        // The start-up hooks run for an nginx command only, as in the official image: nginx -T prints what they made.
        ['--rm', '--cpus', '1', '-e', 'NGINX_WORKER_PROCESSES=3', 'softy-pinko-proxy:e2e'].concat([
          'nginx',
          '-T',
          '-c',
          '/tmp/nginx/nginx.conf',
        ]),
      );
      expect(explicit.stdout).toMatch(/^worker_processes 3;$/m);
      const bad = await dockerRun(['--rm', '-e', 'NGINX_WORKER_PROCESSES=lots', 'softy-pinko-proxy:e2e']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/NGINX_WORKER_PROCESSES/);
    });
  });

  describe('behind a TLS-terminating proxy', () => {
    // From a trusted address the header is believed: HSTS, and the back-end sees https. From anyone else it is
    // ignored: no HSTS, and the back-end sees http.
    it.each([
      { from: 'a trusted address', container: () => proxy, url: 'http://127.0.0.1/api/hello', scheme: 'https' },
      { from: 'an untrusted address', container: () => frontEnd, url: 'http://proxy/api/hello', scheme: 'http' },
    ])('from $from, X-Forwarded-Proto: https makes the visitor $scheme', async ({ container, url, scheme }) => {
      const requestId = `edge-xfp-${scheme}`;
      const answer = await curl(container(), url, [
        'Host: localhost',
        'X-Forwarded-Proto: https',
        `X-Request-ID: ${requestId}`,
      ]);
      expect(answer.headers).toMatch(/^http\/1\.1 200/);
      const hsts = /^strict-transport-security: (.*)\r?$/m.exec(answer.headers)?.[1];
      expect(hsts).toBe(scheme === 'https' ? 'max-age=63072000; includesubdomains' : undefined);
      expect((await backEndLine(requestId)).protocol).toBe(scheme);
    });

    it('plain HTTP from anyone gets no HSTS', async () => {
      const answer = await curl(proxy, 'http://127.0.0.1/', ['Host: localhost']);
      expect(answer.headers).toMatch(/^http\/1\.1 200/);
      expect(answer.headers).not.toContain('strict-transport-security');
    });
  });

  describe('the back-end believes only the proxy', () => {
    it("takes the client's address from the proxy, and a forged X-Forwarded-For from anyone else is ignored", async () => {
      const frontEndAddress = Object.values(
        await stack.inspect<Record<string, { IPAddress: string }>>(frontEnd, '.NetworkSettings.Networks'),
      )[0]!.IPAddress;
      // Through the proxy: the back-end logs the client (here the front-end's container), not the proxy.
      await curl(frontEnd, 'http://proxy/api/hello', ['Host: localhost', 'X-Request-ID: edge-via-proxy']);
      expect((await backEndLine('edge-via-proxy')).remoteAddress).toBe(frontEndAddress);
      // Straight to the back-end, with forged headers: it is its own client, over plain HTTP.
      await curl(frontEnd, 'http://back-end:5252/api/hello', [
        'X-Forwarded-For: 198.51.100.7',
        'X-Forwarded-Proto: https',
        'X-Request-ID: edge-forged',
      ]);
      const forged = await backEndLine('edge-forged');
      expect(forged.remoteAddress).toBe(frontEndAddress);
      expect(forged.protocol).toBe('http');
    });
  });

  it('names each replica by an opaque id, never by its container name', async () => {
    for (const [path, container] of [
      ['/', frontEnd],
      ['/api/hello', backEnd],
    ] as const) {
      const answer = await curl(proxy, `http://127.0.0.1${path}`, ['Host: localhost']);
      const hostname = await stack.inspect<string>(container, '.Config.Hostname');
      const servedBy = /^x-served-by: (\S+)/m.exec(answer.headers)?.[1];
      expect(servedBy, path).toBe(replicaId(hostname));
      expect(answer.headers, path).not.toContain(hostname);
    }
  });

  describe('stub_status', () => {
    it('answers on the network by default, for a separate exporter container', async () => {
      expect((await curl(frontEnd, 'http://proxy:8080/stub_status')).headers).toMatch(/^http\/1\.1 200/);
    });

    it('with STUB_STATUS_LISTEN=127.0.0.1:8080 (a sidecar exporter), only the container itself reaches it', async () => {
      const internal = `${stack.project}_internal`;
      const started = await dockerRun(
        ['--detach', '--network', internal, '--network-alias', 'sidecar-proxy'].concat([
          '-e',
          'STUB_STATUS_LISTEN=127.0.0.1:8080',
          'softy-pinko-proxy:e2e',
        ]),
      );
      expect(started.code, started.stderr).toBe(0);
      const id = started.stdout.trim();
      try {
        let inside = { code: 1, headers: '' };
        for (let i = 0; i < 50 && !/^http\/1\.1 200/.test(inside.headers); i++) {
          inside = await curl(id, 'http://127.0.0.1:8080/stub_status');
          if (!/^http\/1\.1 200/.test(inside.headers)) await sleep(200);
        }
        expect(inside.headers).toMatch(/^http\/1\.1 200/);
        expect((await curl(frontEnd, 'http://sidecar-proxy/healthz')).headers).toMatch(/^http\/1\.1 200/);
        const outside = await curl(frontEnd, 'http://sidecar-proxy:8080/stub_status');
        expect(outside.code, 'connection refused from another container').not.toBe(0);
      } finally {
        await run('docker', ['rm', '--force', id]);
      }
    });
  });
});
