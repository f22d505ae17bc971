/**
 * The monitoring override (docker-compose.monitoring.yml) on a stack with three back-end replicas: Prometheus
 * finds and scrapes every replica, the exporter and itself; its request rate matches the traffic sent; the
 * no-back-end alert goes off when every replica stops; and no metrics port is published or proxied.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT, dotEnv, freePort, imageId, run, runLoud } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { startLoad } from './load.js';

const skipReason = inject('stackSkipReason');
const REPLICAS = 3;
/** The release's version the build is given, which softy_pinko_build_info must report. */
const VERSION = 'e2e-monitoring';
const SCRAPE_INTERVAL_MS = 5000; // monitoring/prometheus.yml's scrape_interval and evaluation_interval
/** The monitoring override's defaults; images-offline.sh's .env names local look-alikes instead. */
const OFFICIAL_MONITORING_IMAGES = {
  PROMETHEUS_IMAGE: 'prom/prometheus:v3.5.0',
  NGINX_EXPORTER_IMAGE: 'nginx/nginx-prometheus-exporter:1.4.2',
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}
interface Target {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastError: string;
}
interface Alert {
  labels: Record<string, string>;
  state: string;
}

/** Present, pulled, or built offline (scripts/images-offline.sh also writes their names to .env). */
async function ensureMonitoringImages(): Promise<void> {
  const chosen = { ...OFFICIAL_MONITORING_IMAGES, ...dotEnv() };
  for (const image of [chosen.PROMETHEUS_IMAGE, chosen.NGINX_EXPORTER_IMAGE]) {
    if (await imageId(image)) continue;
    if ((await run('docker', ['pull', image], { timeoutMs: 300_000 })).code === 0) continue;
    console.log('[monitoring] no registry answers: building the monitoring images offline (npm run images:offline)');
    await runLoud('bash', ['scripts/images-offline.sh']);
    return;
  }
}

/** Retries `check` until it stops throwing, or rethrows its last error after `timeoutMs`. */
async function eventually<T>(check: () => Promise<T>, timeoutMs: number, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(everyMs);
    }
  }
}

describe.skipIf(skipReason !== '').sequential('monitoring (docker-compose.monitoring.yml, 3 back-ends)', () => {
  let stack: TestStack;
  let prometheus: string;
  let commit: string;

  async function api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = new URL(path, prometheus);
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    const res = await fetch(url);
    const body = (await res.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${url}: ${body.error ?? res.status}`);
    return body.data;
  }

  /** An instant query, now or at `atMs` (epoch milliseconds). */
  async function query(expr: string, atMs?: number): Promise<Sample[]> {
    const params: Record<string, string> = { query: expr };
    if (atMs !== undefined) params.time = (atMs / 1000).toFixed(3);
    return (await api<{ result: Sample[] }>('/api/v1/query', params)).result;
  }

  async function targets(): Promise<Target[]> {
    return (await api<{ activeTargets: Target[] }>('/api/v1/targets', { state: 'active' })).activeTargets;
  }

  /** The back-end replicas' addresses on the Compose network, as Prometheus's targets name them. */
  async function replicaAddresses(): Promise<string[]> {
    const ids = await stack.containers('back-end');
    const addresses = await Promise.all(
      ids.map(async (id) => {
        const networks = await stack.inspect<Record<string, { IPAddress: string }>>(id, '.NetworkSettings.Networks');
        return Object.values(networks).map((network) => `${network.IPAddress}:9464`);
      }),
    );
    return addresses.flat().sort();
  }

  /** Every container with a health check is healthy and the others run (the exporter's image has no shell). */
  async function waitReady(timeoutMs = 240_000): Promise<void> {
    await eventually(async () => {
      const ids = await stack.containers();
      const states = await Promise.all(
        ids.map((id) => stack.inspect<{ Status: string; Health?: { Status: string } }>(id, '.State')),
      );
      const notReady = states.filter((state) =>
        state.Health ? state.Health.Status !== 'healthy' : state.Status !== 'running',
      );
      if (ids.length === 0 || notReady.length > 0) throw new Error(`not ready: ${JSON.stringify(notReady)}`);
    }, timeoutMs);
  }

  /** Waits until Prometheus has every replica, the exporter and itself as healthy targets. */
  async function waitTargetsUp(backEnds: number, timeoutMs = 90_000): Promise<Target[]> {
    return eventually(async () => {
      const list = await targets();
      const up = (job: string) => list.filter((t) => t.labels.job === job && t.health === 'up').length;
      const summary = list.map((t) => `${t.labels.job} ${t.labels.instance} ${t.health} ${t.lastError}`);
      if (up('back-end') !== backEnds || up('proxy') !== 1 || up('prometheus') !== 1) {
        throw new Error(`targets not all up yet:\n${summary.join('\n')}`);
      }
      return list;
    }, timeoutMs);
  }

  async function alertState(name: string): Promise<string | undefined> {
    const { alerts } = await api<{ alerts: Alert[] }>('/api/v1/alerts');
    return alerts.find((alert) => alert.labels.alertname === name)?.state;
  }

  beforeAll(async () => {
    await ensureMonitoringImages();
    const prometheusPort = await freePort();
    commit = (await run('git', ['rev-parse', 'HEAD'])).stdout.trim() || 'unknown';
    prometheus = `http://127.0.0.1:${prometheusPort}`;
    // One client sends all the load, so the per-client API rate limit is lifted (stack.test.ts tests it).
    stack = new TestStack(
      'softy-pinko-monitoring',
      await freePort(),
      {
        ...{ API_RATE_LIMIT: '100000r/s', API_RATE_BURST: '100000' },
        ...{ PROMETHEUS_PORT: String(prometheusPort), REVISION: commit, VERSION },
      },
      { files: [`${REPO_ROOT}docker-compose.monitoring.yml`] },
    );
    await stack.down();
    try {
      await stack.execLoud(['up', '--detach', '--build', '--scale', `back-end=${REPLICAS}`]);
      await waitReady();
      await waitTargetsUp(REPLICAS);
    } catch (error) {
      console.error((await stack.exec(['logs', '--no-color', '--tail', '40'])).stdout);
      throw error;
    }
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  it(`lists every one of the ${REPLICAS} back-end replicas, found through Docker DNS, as up == 1`, async () => {
    const list = await waitTargetsUp(REPLICAS);
    console.log(
      `[monitoring] Prometheus targets:\n${list
        .map((t) => `  ${(t.labels.job ?? '').padEnd(10)} ${t.scrapeUrl.padEnd(40)} ${t.health}`)
        .join('\n')}`,
    );
    const up = await query('up{job="back-end"}');
    expect(up.map((sample) => sample.metric.instance).sort()).toEqual(await replicaAddresses());
    expect(up.map((sample) => sample.value[1])).toEqual(Array(REPLICAS).fill('1'));
  });

  it('scrapes the proxy through the exporter (nginx_up 1) and Prometheus itself', async () => {
    expect((await query('up{job="prometheus"}')).map((s) => s.value[1])).toEqual(['1']);
    expect((await query('up{job="proxy"}')).map((s) => s.value[1])).toEqual(['1']);
    expect((await query('nginx_up{job="proxy"}')).map((s) => s.value[1])).toEqual(['1']);
    expect(await query('nginx_connections_active{job="proxy"}')).toHaveLength(1);
  });

  it('measures the request rate sent through the proxy within ±5 %, and counts every request', async () => {
    const rate = 40; // requests per second, spread by the proxy over the three replicas
    const selector = '{job="back-end", route="/api/hello", method="GET", status_class="2xx"}';
    await sleep(2 * SCRAPE_INTERVAL_MS);
    const [before] = await query(`sum(http_requests_total${selector})`);
    const started = Date.now();
    const load = startLoad(`${stack.baseUrl}/api/hello`, { ratePerSecond: rate, maxDurationMs: 40_000 });
    await sleep(40_000);
    const result = await load.stop();
    expect(result.statuses['200']).toBe(result.sent);
    // Two scrapes after the last request, every one of them is in the counters.
    await sleep(2 * SCRAPE_INTERVAL_MS + 1000);
    const [after] = await query(`sum(http_requests_total${selector})`);
    expect(Number(after!.value[1]) - Number(before?.value[1] ?? 0)).toBe(result.sent);

    // A 30 s window well inside the load: what rate() reads there is the rate the client sent.
    const [measured] = await query(`sum(rate(http_requests_total${selector}[30s]))`, started + 35_000);
    const sentRate = result.sent / (result.durationMs / 1000);
    console.log(`[monitoring] sent ${sentRate.toFixed(2)} req/s, Prometheus measured ${measured?.value[1]} req/s`);
    expect(Number(measured!.value[1])).toBeGreaterThanOrEqual(sentRate * 0.95);
    expect(Number(measured!.value[1])).toBeLessThanOrEqual(sentRate * 1.05);
  });

  it('carries the Node process metrics and a build-info gauge from every replica', async () => {
    for (const metric of [
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_heap_size_used_bytes',
      'softy_pinko_build_info',
    ]) {
      expect(await query(`count(${metric}{job="back-end"})`), metric).toEqual([
        expect.objectContaining({ value: [expect.any(Number), String(REPLICAS)] }),
      ]);
    }
    // After the load above every replica has collected garbage at least once.
    expect(await query('count(count by (instance) (nodejs_gc_duration_seconds_count{job="back-end"}))')).toEqual([
      expect.objectContaining({ value: [expect.any(Number), String(REPLICAS)] }),
    ]);
    // The release's version and commit, passed to the build by docker-compose.yml as its OCI labels are.
    for (const { metric } of await query('softy_pinko_build_info{job="back-end"}')) {
      expect(metric).toEqual(expect.objectContaining({ version: VERSION, commit }));
    }
  });

  it('labels an unknown path as one route, however many URLs are tried', async () => {
    for (let i = 0; i < 20; i += 1) expect((await fetch(`${stack.baseUrl}/api/no-such-path-${i}`)).status).toBe(404);
    await sleep(2 * SCRAPE_INTERVAL_MS);
    const routes = await query('count by (route) (http_requests_total{job="back-end", status_class="4xx"})');
    expect(routes.map((sample) => sample.metric.route)).not.toContainEqual(expect.stringContaining('no-such-path'));
  });

  it('counts a stored contact message by store', async () => {
    const res = await fetch(`${stack.baseUrl}/api/contact`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Monitor', email: 'monitor@example.com', message: 'Counted?' }),
    });
    expect(res.status).toBe(201);
    const stored = await eventually(async () => {
      const samples = await query('sum by (store) (contact_messages_stored_total{job="back-end"}) > 0');
      if (samples.length === 0) throw new Error('no stored message counted yet');
      return samples;
    }, 30_000);
    expect(stored.map((sample) => sample.metric.store)).toEqual(['file']);
    expect(await query('sum(contact_messages_failed_total{job="back-end"}) > 0')).toEqual([]);
  });

  it("evaluates every query of monitoring/dashboard.json, and the API's panels have data", async () => {
    const dashboard = JSON.parse(readFileSync(`${REPO_ROOT}monitoring/dashboard.json`, 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets ?? []) {
        const samples = await query(expr);
        if (panel.title.startsWith('API')) expect(samples.length, `${panel.title}: ${expr}`).toBeGreaterThan(0);
      }
    }
  });

  it('publishes no metrics port: only the proxy, and Prometheus on 127.0.0.1', async () => {
    const published: string[] = [];
    for (const id of await stack.containers()) {
      const labels = await stack.inspect<Record<string, string>>(id, '.Config.Labels');
      const service = labels['com.docker.compose.service'];
      const ports = await stack.inspect<Record<string, { HostIp: string; HostPort: string }[] | null>>(
        id,
        '.NetworkSettings.Ports',
      );
      for (const [port, bindings] of Object.entries(ports)) {
        for (const binding of bindings ?? []) published.push(`${service} ${port} ${binding.HostIp}`);
      }
    }
    const unique = [...new Set(published)].sort();
    expect(unique.filter((entry) => entry.startsWith('prometheus'))).toEqual(['prometheus 9090/tcp 127.0.0.1']);
    expect(unique.filter((entry) => !entry.startsWith('prometheus') && !entry.startsWith('proxy 80/tcp'))).toEqual([]);
  });

  it('answers 404 for /api/metrics, /metrics and /stub_status through the proxy', async () => {
    for (const path of ['/api/metrics', '/metrics', '/stub_status', '/api/stub_status']) {
      const res = await fetch(`${stack.baseUrl}${path}`);
      const body = await res.text();
      expect(res.status, path).toBe(404);
      expect(body, path).not.toMatch(/http_requests_total|process_cpu|Active connections/);
    }
  });

  /** Stops `service`, waits for `alert` to go pending or firing, starts it again, waits for the alert to clear. */
  async function firesAndClears(
    alert: string,
    service: string,
    clearWithinMs: number,
    restarted: () => Promise<unknown> = async () => {},
  ) {
    expect(await alertState(alert)).toBeUndefined();
    expect((await stack.exec(['stop', service])).code).toBe(0);
    const state = await eventually(async () => {
      const current = await alertState(alert);
      if (current !== 'pending' && current !== 'firing') throw new Error(`${alert} is ${current ?? 'inactive'}`);
      return current;
    }, 60_000);
    console.log(`[monitoring] ${alert} is ${state} with ${service} stopped`);
    expect((await stack.exec(['start', service])).code).toBe(0);
    await restarted();
    await eventually(async () => {
      const current = await alertState(alert);
      if (current !== undefined) throw new Error(`${alert} still ${current}`);
    }, clearWithinMs);
  }

  it('fires ProxyDown (pending or firing) once the proxy is stopped, and clears it after', async () => {
    await firesAndClears('ProxyDown', 'proxy', 60_000);
  });

  it('fires NoBackEndUp (pending or firing) once every back-end replica is stopped, and clears it after', async () => {
    await firesAndClears('NoBackEndUp', 'back-end', 30_000, () => waitTargetsUp(REPLICAS));
  });
});
