/**
 * Prometheus metrics of the API: requests and their duration by route pattern, method and status class;
 * contact messages stored and failed by store; Node's process metrics; a build-info gauge. listenMetrics()
 * serves them on a port of their own, which the proxy never forwards to.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { FastifyPluginCallback } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ContactStore } from '../contact-store.js';

/** Seconds. 0.25 is a bound so the /api/hello p99 alert (250 ms, monitoring/alerts.yml) reads a bucket edge. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** The route of every request that matched no route: one series, however many URLs are tried. */
export const UNMATCHED_ROUTE = 'unmatched';
// Any other method string a client invents is counted as one, so it cannot add series either.
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export interface BuildInfo {
  version: string;
  commit: string;
}

export interface ApiMetrics {
  readonly contentType: string;
  /** The text exposition of the app's metrics and the process's. */
  text(): Promise<string>;
  contactStored(store: string): void;
  contactFailed(store: string): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

// Node's metrics belong to the process, not to an app: collected once, however many apps the tests build.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const metrics: FastifyPluginCallback<{ buildInfo: BuildInfo }> = (app, { buildInfo }, done) => {
  // Started now, not at the first scrape, so the GCs and lag from start-up on are counted.
  const nodeMetrics = processMetrics();
  const registry = new Registry();
  const labelNames = ['route', 'method', 'status_class'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'Requests answered, by route pattern, method and status class',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to answer, by route pattern, method and status class',
    labelNames,
    buckets: [...DURATION_BUCKETS],
    registers: [registry],
  });
  const stored = new Counter({
    name: 'contact_messages_stored_total',
    help: 'Contact messages stored, by store',
    labelNames: ['store'],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'contact_messages_failed_total',
    help: 'Contact messages that could not be stored, by store',
    labelNames: ['store'],
    registers: [registry],
  });
  new Gauge({
    name: 'softy_pinko_build_info',
    help: 'Always 1; the labels name the running build',
    labelNames: ['version', 'commit', 'node_version'],
    registers: [registry],
  }).set({ ...buildInfo, node_version: process.version }, 1);

  // One child per label set, found by a string key: labels() would hash the values on every request.
  const series = new Map<string, { count: Counter.Internal; time: Histogram.Internal<(typeof labelNames)[number]> }>();
  app.addHook('onResponse', (request, reply, hookDone) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const method = METHODS.has(request.method) ? request.method : 'OTHER';
    const statusClass = `${Math.floor(reply.statusCode / 100)}xx`;
    const key = `${method} ${statusClass} ${route}`;
    let child = series.get(key);
    if (!child) {
      child = { count: requests.labels(route, method, statusClass), time: duration.labels(route, method, statusClass) };
      series.set(key, child);
    }
    child.count.inc();
    child.time.observe(reply.elapsedTime / 1000);
    hookDone();
  });

  app.decorate('metrics', {
    contentType: registry.contentType,
    text: () => Registry.merge([nodeMetrics, registry]).metrics(),
    contactStored: (store: string) => stored.inc({ store }),
    contactFailed: (store: string) => failed.inc({ store }),
  } satisfies ApiMetrics);
  done();
};

export default fp(metrics, { name: 'metrics' });

/** Serves GET /metrics, and 404 for anything else, on its own address: Prometheus's, never the proxy's. */
export async function listenMetrics(source: ApiMetrics, address: { host: string; port: number }): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found\n');
      return;
    }
    source.text().then(
      (body) => response.writeHead(200, { 'content-type': source.contentType }).end(body),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  server.listen(address.port, address.host);
  await once(server, 'listening');
  return server;
}

/** The same store, each append counted as stored (a new message) or failed, under the store's kind. */
export function countContactStore(store: ContactStore, metrics: ApiMetrics): ContactStore {
  return {
    kind: store.kind,
    async append(message) {
      try {
        const result = await store.append(message);
        if (result.created) metrics.contactStored(store.kind);
        return result;
      } catch (error) {
        metrics.contactFailed(store.kind);
        throw error;
      }
    },
    list: () => store.list(),
    ready: () => store.ready(),
    close: () => store.close(),
  };
}
