/**
 * What the images really are, read from their Dockerfiles and configs rather than copied into the tests:
 * the user they run as, the ports they expose, the path and port their HEALTHCHECK asks, and the proxy's
 * resolver validity. A manifest that drifts from an image then fails a test instead of a rollout.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { repoRoot } from './manifests.js';

export interface ImageFacts {
  /** `USER` of the final stage, as written (`101:101`, or a name the kubelet cannot check). */
  user: string;
  uid: number | undefined;
  gid: number | undefined;
  exposed: number[];
  /** The port /metrics is served on, when the image has one (not EXPOSEd: Compose never publishes it). */
  metricsPort: number | undefined;
  /** The HEALTHCHECK's HTTP request: the liveness probe must ask the same. */
  health: { path: string; port: number };
}

/** The three images this repository builds, keyed by their Compose service name. */
export const ourImages = ['front-end', 'back-end', 'proxy'] as const;

/** Images we do not build: the user their own Dockerfiles declare and what their probes may ask, with the source. */
export const upstreamImages: Record<
  string,
  {
    uid: number;
    gid: number;
    source: string;
    probe: { exec: string } | { path: string; port: number };
    /** A sidecar: its health is its own, never the pod's readiness. */
    sidecar?: boolean;
    /** How long its start may take before it answers (initdb, crash recovery), in seconds. */
    startSeconds: number;
  }
> = {
  // docker-library/postgres Dockerfile: `groupadd -r postgres --gid=999; useradd -r -g postgres --uid=999`.
  // initdb on an empty volume, or crash recovery after a kill, takes minutes on a slow disk.
  postgres: { uid: 999, gid: 999, source: 'docker-library/postgres', probe: { exec: 'pg_isready' }, startSeconds: 120 },
  // nginx/nginx-prometheus-exporter Dockerfile: `USER 1001:1001`; it serves /metrics on 9113.
  'nginx-prometheus-exporter': {
    uid: 1001,
    gid: 1001,
    source: 'nginx/nginx-prometheus-exporter',
    probe: { path: '/metrics', port: 9113 },
    sidecar: true,
    startSeconds: 5,
  },
};

const read = (path: string): string => readFileSync(`${repoRoot}${path}`, 'utf8');

/** Dockerfile instructions of the final stage, with line continuations joined. */
function finalStage(dockerfile: string): string[] {
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const from = instructions.map((line) => /^FROM\s/i.test(line)).lastIndexOf(true);
  return instructions.slice(from);
}

export function imageFacts(service: (typeof ourImages)[number]): ImageFacts {
  const stage = finalStage(read(`${service}/Dockerfile`));
  const argsOf = (keyword: string): string[] =>
    stage
      .filter((line) => line.toUpperCase().startsWith(`${keyword} `))
      .map((line) => line.slice(keyword.length).trim());

  const user = argsOf('USER').at(-1) ?? 'root';
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
  const exposed = argsOf('EXPOSE').flatMap((ports) => ports.split(/\s+/).map((port) => Number.parseInt(port, 10)));

  const healthcheck = argsOf('HEALTHCHECK').at(-1) ?? '';
  let health: ImageFacts['health'];
  const url = /http:\/\/(?:127\.0\.0\.1|localhost)(?::(\d+))?(\/[^\s"']*)/.exec(healthcheck);
  if (url) {
    health = { path: url[2]!, port: Number(url[1] ?? 80) };
  } else if (healthcheck.includes('dist/healthcheck.js')) {
    // The back-end's check is a script: its URL is in the source, its port the image's PORT.
    const script = read(`${service}/src/healthcheck.ts`);
    const path = /http:\/\/127\.0\.0\.1:\$\{port\}(\/[^`]*)`/.exec(script)?.[1];
    const port = argsOf('ENV')
      .join(' ')
      .match(/\bPORT=(\d+)/)?.[1];
    if (!path || !port) throw new Error(`${service}: cannot read the HEALTHCHECK's URL`);
    health = { path, port: Number(port) };
  } else {
    throw new Error(`${service}: no HTTP HEALTHCHECK found in its Dockerfile`);
  }
  // The back-end's metrics port: METRICS_PORT's default in its config.
  const config = service === 'back-end' ? read('back-end/src/config.ts') : '';
  const metrics = /\bMETRICS_PORT:\s*port\((\d+)\)/.exec(config)?.[1];
  return {
    user,
    uid: numeric ? Number(numeric[1]) : undefined,
    gid: numeric?.[2] === undefined ? undefined : Number(numeric[2]),
    exposed,
    metricsPort: metrics === undefined ? undefined : Number(metrics),
    health,
  };
}

/** The API's routes under /api, as registered in back-end/src (e.g. `/api/health`, `/api/health/ready`). */
export function backEndRoutes(): string[] {
  const dir = `${repoRoot}back-end/src/routes`;
  return readdirSync(dir)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .flatMap((file) =>
      [...readFileSync(`${dir}/${file}`, 'utf8').matchAll(/\.(?:get|route)\(\s*['"`](\/[^'"`]*)['"`]/g)].map(
        (match) => `/api${match[1]}`,
      ),
    );
}

/** The `valid=` of the proxy's nginx resolver, in seconds, wherever the proxy's configuration sets it. */
export function resolverValidSeconds(): number {
  const files = ['proxy/proxy.conf', ...listed('proxy/templates'), ...listed('proxy/snippets')];
  const found = files
    .filter((file) => existsSync(`${repoRoot}${file}`))
    .flatMap((file) => [...read(file).matchAll(/resolver\s[^;]*\bvalid=(\d+)(s?)\b/g)])
    .map((match) => Number(match[1]));
  if (found.length === 0) throw new Error("no `resolver … valid=` in the proxy's configuration");
  return Math.max(...found);
}

function listed(dir: string): string[] {
  const path = `${repoRoot}${dir}`;
  return existsSync(path) ? readdirSync(path).map((file) => `${dir}/${file}`) : [];
}

/** How long the back-end drains after SIGTERM before it gives up (server.ts), in seconds. */
export function backEndDrainSeconds(): number {
  const server = read('back-end/src/server.ts');
  // close-with-grace's `delay`, or the hand-written SHUTDOWN_GRACE_MS it replaced.
  const match =
    /closeWithGrace\(\s*\{[^}]*\bdelay:\s*([\d_]+)/.exec(server) ?? /SHUTDOWN_GRACE_MS\s*=\s*([\d_]+)/.exec(server);
  if (!match)
    throw new Error("back-end/src/server.ts: cannot find how long the server drains (close-with-grace's delay)");
  return Number(match[1]!.replace(/_/g, '')) / 1000;
}

/** The longest the proxy waits on an upstream's answer (proxy_read_timeout), in seconds: a stop must allow it. */
export function proxyReadTimeoutSeconds(): number {
  const files = ['proxy/proxy.conf', ...listed('proxy/snippets'), ...listed('proxy/templates')];
  const found = files
    .flatMap((file) => [...read(file).matchAll(/proxy_read_timeout\s+(\d+)(ms|s)?;/g)])
    .map((m) => Number(m[1]) / (m[2] === 'ms' ? 1000 : 1));
  if (found.length === 0) throw new Error("no proxy_read_timeout in the proxy's configuration");
  return Math.max(...found);
}

/**
 * How long an image may take from start to its first healthy answer, in seconds: its HEALTHCHECK's start
 * period (the back-end no longer migrates at start-up; the migrate step runs before it).
 */
export function startSeconds(service: (typeof ourImages)[number]): number {
  const period = /--start-period=(\d+)s/.exec(finalStage(read(`${service}/Dockerfile`)).join('\n'))?.[1];
  if (!period) throw new Error(`${service}/Dockerfile: no HEALTHCHECK --start-period`);
  return Number(period);
}
