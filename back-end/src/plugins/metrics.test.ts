import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { useTempDir } from '../testing/temp-dir.js';
import { DURATION_BUCKETS, UNMATCHED_ROUTE, listenMetrics } from './metrics.js';

/** The value of one series in a text exposition, or undefined when the series is absent. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('the metrics plugin', () => {
  const tempDir = useTempDir('metrics');
  const apps: Awaited<ReturnType<typeof buildApp>>[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  async function app() {
    const built = await buildApp({ contactStorePath: `${tempDir()}/messages.jsonl` });
    apps.push(built);
    return built;
  }

  it('labels requests by route pattern: every unknown path is one series, not one per URL', async () => {
    const api = await app();
    for (let i = 0; i < 2; i += 1) expect((await api.inject('/api/hello')).statusCode).toBe(200);
    for (let i = 0; i < 5; i += 1) expect((await api.inject(`/api/nope-${i}?q=${i}`)).statusCode).toBe(404);
    const text = await api.metrics.text();
    expect(valueOf(text, 'http_requests_total{route="/api/hello",method="GET",status_class="2xx"}')).toBe(2);
    expect(valueOf(text, `http_requests_total{route="${UNMATCHED_ROUTE}",method="GET",status_class="4xx"}`)).toBe(5);
    expect(text).not.toContain('nope');
    expect(text.split('\n').filter((line) => line.startsWith('http_requests_total{'))).toHaveLength(2);
  });

  it('counts a method it does not know as OTHER', async () => {
    const api = await app();
    await api.inject({ method: 'PROPFIND', url: '/api/hello' });
    const text = await api.metrics.text();
    expect(text).toContain('method="OTHER"');
    expect(text).not.toContain('PROPFIND');
  });

  it('observes durations in buckets with 250 ms as a bound: a 300 ms answer lands above it', async () => {
    const api = await app();
    api.get('/api/slow-test-route', async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return 'slow';
    });
    await api.inject('/api/slow-test-route');
    await api.inject('/api/hello');
    const text = await api.metrics.text();
    const bucket = (route: string, le: string) =>
      valueOf(
        text,
        `http_request_duration_seconds_bucket{le="${le}",route="${route}",method="GET",status_class="2xx"}`,
      );
    expect(DURATION_BUCKETS).toContain(0.25);
    expect([...DURATION_BUCKETS].sort((a, b) => a - b)).toEqual(DURATION_BUCKETS);
    for (const le of DURATION_BUCKETS) expect(bucket('/api/hello', String(le)), `le=${le}`).toBeDefined();
    expect(bucket('/api/slow-test-route', '0.25')).toBe(0);
    expect(bucket('/api/slow-test-route', '0.5')).toBe(1);
    expect(bucket('/api/hello', '0.25')).toBe(1);
  });

  it('counts contact messages stored and failed, by store', async () => {
    const post = (api: Awaited<ReturnType<typeof app>>) =>
      api.inject({
        method: 'POST',
        url: '/api/contact',
        payload: { name: 'Ada', email: 'ada@example.com', message: 'Hello' },
      });
    const good = await app();
    expect((await post(good)).statusCode).toBe(201);
    const text = await good.metrics.text();
    expect(valueOf(text, 'contact_messages_stored_total{store="file"}')).toBe(1);
    expect(valueOf(text, 'contact_messages_failed_total{store="file"}')).toBeUndefined();

    // The store's path is a directory: every append fails.
    const broken = await buildApp({ contactStorePath: tempDir() });
    apps.push(broken);
    expect((await post(broken)).statusCode).toBeGreaterThanOrEqual(500);
    const brokenText = await broken.metrics.text();
    expect(valueOf(brokenText, 'contact_messages_failed_total{store="file"}')).toBe(1);
    expect(valueOf(brokenText, 'contact_messages_stored_total{store="file"}')).toBeUndefined();
  });

  it('carries the Node process metrics and a build-info gauge', async () => {
    const built = await buildApp({ buildInfo: { version: '1.2.3', commit: 'abc1234' } });
    apps.push(built);
    const text = await built.metrics.text();
    for (const name of [
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toMatch(/^softy_pinko_build_info\{version="1\.2\.3",commit="abc1234",node_version="v[\d.]+"\} 1$/m);
  });

  it('is not served by the API itself: /api/metrics and /metrics answer 404', async () => {
    const api = await app();
    expect((await api.inject('/api/metrics')).statusCode).toBe(404);
    expect((await api.inject('/metrics')).statusCode).toBe(404);
  });

  it('serves GET /metrics on a listener of its own, and 404 for anything else there', async () => {
    const api = await app();
    await api.inject('/api/hello');
    const server = await listenMetrics(api.metrics, { host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      expect(await res.text()).toContain('http_requests_total{route="/api/hello",method="GET",status_class="2xx"} 1');
      expect((await fetch(`${base}/`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(404);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
