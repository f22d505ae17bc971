/** How one service moves to a new image under load, for `npm run deploy`: roll, reload or replace. */
import { waitHealthy, type Compose } from './compose.js';
import { proxyDnsRefreshMs, replicaId, run } from './stack.js';

/** In dependency order: the page's API first, the proxy last. Other services (db, monitoring) are left alone. */
export const SERVICES = ['back-end', 'front-end', 'proxy'] as const;
export type Service = (typeof SERVICES)[number];

/** Configuration the proxy can reload in place; any other difference between images needs a new container. */
const PROXY_CONFIG_DIR = '/etc/nginx';
/** Where a reloaded proxy keeps the image its configuration came from, by host name (proxy/reload.sh). */
const PROXY_CONFIG_IMAGE_FILE = '/var/lib/proxy-release/$(cat /etc/hostname)/image';

export class DeployError extends Error {}

export const say = (message: string): void => console.log(`deploy: ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a docker command printed; it throws, with what docker said, when the command fails. */
async function docker(args: string[], timeoutMs?: number): Promise<string> {
  const { code, stdout, stderr } = await run('docker', args, timeoutMs ? { timeoutMs } : {});
  if (code !== 0) throw new DeployError(`docker ${args.slice(0, 2).join(' ')} failed: ${(stderr || stdout).trim()}`);
  return stdout.trim();
}

export interface Container {
  id: string;
  /** The image's id, and the reference it was started by (which names its release). */
  image: string;
  reference: string;
  hash: string;
  hostname: string;
}

export async function describe(ids: string[]): Promise<Container[]> {
  if (ids.length === 0) return [];
  const labels = '{{index .Config.Labels "com.docker.compose.config-hash"}}';
  const format = `{{.Id}} {{.Image}} {{.Config.Image}} ${labels} {{.Config.Hostname}}`;
  const lines = (await docker(['inspect', '--format', format, ...ids])).split('\n');
  return lines.map((line) => {
    const [id, image, reference, hash, hostname] = line.split(' ') as [string, string, string, string, string];
    return { id, image, reference, hash, hostname };
  });
}

/** What a service runs now and what it is to run. */
export interface Plan {
  service: Service;
  target: string;
  old: Container[];
  /** For the proxy: whether only its configuration changes (a reload instead of a new container). */
  reloadOnly: boolean;
}

export const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/** The image a proxy's configuration comes from: its own, or the one it last reloaded from. */
export async function proxyConfigImage(container: Container): Promise<string> {
  const { code, stdout } = await run('docker', ['exec', container.id, 'sh', '-c', `cat ${PROXY_CONFIG_IMAGE_FILE}`]);
  return code === 0 && stdout.trim() !== '' ? stdout.trim() : container.image;
}

/** A digest of an image's paths, link targets and file contents outside its nginx configuration. */
async function digestOutsideConfig(image: string): Promise<string> {
  const script =
    `find / -xdev \\( -path ${PROXY_CONFIG_DIR} -o -path /tmp -o -path /etc/hostname -o -path /etc/hosts ` +
    `-o -path /etc/resolv.conf \\) -prune -o -type f -exec md5sum {} + -o ! -type d -printf '%p -> %l\\n' ` +
    '| sort | md5sum';
  return docker(['run', '--rm', '--network', 'none', '--user', '0', '--entrypoint', 'sh', image, '-c', script]);
}

const contents = new Map<string, Promise<{ layers: string; settings: string }>>();

/** An image's layers and settings, without the labels that name the release which built it; inspected once. */
function content(image: string): Promise<{ layers: string; settings: string }> {
  const format = '{{json .RootFS.Layers}}\n{{json .Config}}';
  const inspect = () =>
    docker(['image', 'inspect', '--format', format, image]).then((text) => {
      const [layers, config] = text.split('\n');
      const { Labels: _labels, ...settings } = JSON.parse(config!) as Record<string, unknown>;
      return { layers: layers!, settings: JSON.stringify(settings) };
    });
  if (!contents.has(image)) contents.set(image, inspect());
  return contents.get(image)!;
}

/** How image `to` differs from `from`: not at all (an unchanged service's new release), in /etc/nginx only, or more. */
export async function difference(from: string, to: string): Promise<'none' | 'config' | 'other'> {
  if (from === to) return 'none';
  const [a, b] = await Promise.all([content(from), content(to)]);
  if (a.settings !== b.settings) return 'other';
  if (a.layers === b.layers) return 'none';
  const [x, y] = await Promise.all([digestOutsideConfig(from), digestOutsideConfig(to)]);
  return x === y ? 'config' : 'other';
}

/** Waits until the new containers are healthy; fails at once when one is unhealthy or has exited. */
const waitNew = (service: Service, ids: string[], timeoutMs: number): Promise<void> =>
  waitHealthy(async () => ids, timeoutMs, true).catch((error: Error) => {
    throw new DeployError(`${service}: the new version ${error.message}`);
  });

/** What the proxy asks to learn which replica answers: the back-end's greeting, a page the front-end lacks (a 404). */
const PROBE_PATH: Record<Exclude<Service, 'proxy'>, string> = {
  'back-end': '/api/hello',
  'front-end': '/softy-pinko-deploy-probe',
};

/**
 * Waits until the proxy has sent a request to each of `hostnames`, asking from inside it (its own DNS answers,
 * whatever port or TLS it is published with), a few a second to stay under the API's rate limit.
 */
async function waitRouted(compose: Compose, service: Exclude<Service, 'proxy'>, hostnames: string[]): Promise<void> {
  const [proxy] = await compose.containers('proxy');
  if (!proxy) return; // Nothing routes yet: the proxy will resolve them when it starts.
  const env = await docker(['inspect', '--format', '{{json .Config.Env}}', proxy]);
  const url = (JSON.parse(env) as string[]).includes('TLS=on') ? 'https://127.0.0.1' : 'http://127.0.0.1';
  const requests = String(Math.min(2 * hostnames.length + 2, 10));
  const script =
    'for i in $(seq "$0"); do curl --insecure --silent --output /dev/null --dump-header - ' +
    '--header "Host: localhost" "$1"; sleep 0.1; done';
  const probe = ['exec', proxy, 'sh', '-c', script, requests, url + PROBE_PATH[service]];
  // Each replica names itself by an opaque id derived from its host name, not by the name.
  const unseen = new Set(hostnames.map(replicaId));
  const deadline = Date.now() + 30_000; // the proxy resolves names again every 5 s (proxy.conf)
  while (unseen.size > 0) {
    if (Date.now() > deadline) {
      throw new DeployError(`${service}: the proxy did not route to ${[...unseen].join(', ')} within 30 s`);
    }
    const { stdout } = await run('docker', probe);
    for (const match of stdout.matchAll(/^x-served-by:\s*(\S+)/gim)) unseen.delete(match[1]!);
    if (unseen.size > 0) await sleep(500);
  }
}

const PROXY_DNS_REFRESH_MS = proxyDnsRefreshMs();

/**
 * Stops containers one at a time (their stop signal drains them), each followed by the proxy's DNS refresh:
 * one gone address costs a request a retry, several at once could use up its tries.
 */
async function drain(ids: string[]): Promise<void> {
  for (const id of ids) {
    await docker(['stop', id], 120_000);
    await docker(['rm', id]);
    await sleep(PROXY_DNS_REFRESH_MS);
  }
}

/** Back-end or front-end: the new replicas next to the old, healthy and routed, then the old ones drained. */
export async function roll(compose: Compose, step: Plan, healthTimeoutMs: number): Promise<void> {
  const service = step.service as Exclude<Service, 'proxy'>;
  const started = Date.now();
  const oldIds = new Set(step.old.map((container) => container.id));
  const scale = `${service}=${oldIds.size + Math.max(oldIds.size, 1)}`;
  await compose.output(['up', '--detach', '--no-deps', '--no-recreate', '--scale', scale, service]);
  const fresh = (await describe(await compose.containers(service))).filter((container) => !oldIds.has(container.id));
  const [freshIds, hostnames] = [fresh.map((c) => c.id), fresh.map((c) => c.hostname)];
  say(`${service}: ${fresh.length} new starting …`);
  try {
    await waitNew(service, freshIds, healthTimeoutMs);
    await waitRouted(compose, service, hostnames);
  } catch (error) {
    await drain(freshIds);
    const { message } = error as Error;
    throw new DeployError(`${message}\nThe new containers were removed; the old version keeps serving.`);
  }
  await drain([...oldIds]);
  const seconds = Math.round((Date.now() - started) / 1000);
  say(`${service}: ${fresh.length} new healthy, routing, draining ${oldIds.size} old… done in ${seconds} s`);
}

/**
 * The proxy: a configuration-only change is reloaded in place, keeping every connection; anything else gets a
 * new container, the one cut Docker cannot avoid (a published port belongs to one container at a time).
 */
export async function replaceProxy(compose: Compose, step: Plan, healthTimeoutMs: number): Promise<void> {
  const started = Date.now();
  const [old] = step.old;
  if (step.reloadOnly && old) {
    const files = 'nginx.conf mime.types snippets conf.d templates';
    const pipeline =
      `docker run --rm --network none --entrypoint tar "$0" -C ${PROXY_CONFIG_DIR} -c ${files} ` +
      '| docker exec --interactive "$1" proxy-reload "$0"';
    const reloaded = await run('bash', ['-o', 'pipefail', '-c', pipeline, step.target, old.id]);
    if (reloaded.code === 0) {
      say(`proxy: configuration reloaded in place, no connection dropped… done in ${Date.now() - started} ms`);
      return;
    }
    // 2: valid (nginx -t passed above) but not reloadable into what runs; a new container starts with it.
    if (reloaded.code !== 2) throw new DeployError(`proxy: reload failed: ${reloaded.stderr.trim()}`);
    say('proxy: nginx would not reload this configuration (its log says why); replacing the container instead');
  }
  await compose.output(['up', '--detach', '--no-deps', '--force-recreate', 'proxy']);
  const [fresh] = await compose.containers('proxy');
  await waitNew('proxy', [fresh!], healthTimeoutMs);
  // What the replaced container had reloaded is no one's any more.
  const forget = 'find /var/lib/proxy-release -mindepth 1 -maxdepth 1 ! -name "$(cat /etc/hostname)" -exec rm -rf {} +';
  await docker(['exec', fresh!, 'sh', '-c', forget]);
  say(`proxy: new container healthy… done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
