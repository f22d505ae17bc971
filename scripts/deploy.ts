/**
 * `npm run deploy`: ships what the working tree builds to the running Compose stack with no failed request.
 * A thin wrapper over `docker compose`, service by service:
 * - back-end and front-end: new containers start next to the old ones (same service, twice the replicas,
 *   --no-recreate); once each is healthy and the proxy routes to it, the old ones drain and stop one by one;
 * - proxy: the new image's configuration is checked with `nginx -t` before anything changes; a change to
 *   /etc/nginx alone is applied by a graceful reload, anything else replaces the container (a short cut);
 * - with a `migrate` service (the PostgreSQL override), a changed back-end's migrations run first, from its
 *   new image, while the old back-end serves: changes must be expand/contract (docs/stores.md);
 * - a service whose image and Compose settings did not change is not touched;
 * - one deploy of a project at a time: a second one is refused before it changes anything.
 * A new version that does not get healthy in time is removed and the old one keeps serving; the command
 * then exits 1 naming the service and its last health output. Each deploy tags what it replaced
 * `:previous`, so `npm run deploy -- --rollback` goes back to it.
 *
 *   npm run deploy [-- [--rollback] [-f FILE]… [-p PROJECT] [--health-timeout SECONDS]]
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lock } from 'proper-lockfile';
import { proxyDnsRefreshMs, replicaId, requireCompose, run, runLoud, type RunResult } from './lib/stack.js';

/** In dependency order: the page's API first, the proxy last. Other services (db, monitoring) are left alone. */
const SERVICES = ['back-end', 'front-end', 'proxy'] as const;
type Service = (typeof SERVICES)[number];

/** Configuration the proxy can reload in place; any other difference between images needs a new container. */
const PROXY_CONFIG_DIR = '/etc/nginx';
/** Where a reloaded proxy notes which image its configuration came from (tmpfs: a restart forgets it). */
const PROXY_CONFIG_IMAGE_FILE = '/tmp/config-image';

interface Options {
  rollback: boolean;
  files: string[];
  project: string | undefined;
  healthTimeoutMs: number;
}

class DeployError extends Error {}

const say = (message: string): void => console.log(`deploy: ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rollback: { type: 'boolean', default: false },
      file: { type: 'string', short: 'f', multiple: true, default: [] },
      'project-name': { type: 'string', short: 'p' },
      'health-timeout': { type: 'string', default: '120' },
    },
  });
  const seconds = Number(values['health-timeout']);
  if (!Number.isInteger(seconds) || seconds < 1) throw new DeployError('--health-timeout must be whole seconds');
  return {
    rollback: values.rollback,
    files: values.file,
    project: values['project-name'],
    healthTimeoutMs: seconds * 1000,
  };
}

async function must(result: Promise<RunResult>, what: string): Promise<string> {
  const { code, stdout, stderr } = await result;
  if (code !== 0) throw new DeployError(`${what} failed: ${(stderr || stdout).trim()}`);
  return stdout.trim();
}

const docker = (args: string[], timeoutMs?: number): Promise<string> =>
  must(run('docker', args, timeoutMs ? { timeoutMs } : {}), `docker ${args.slice(0, 2).join(' ')}`);

interface ComposeConfig {
  name: string;
  services: Record<string, { image?: string }>;
}

class Compose {
  private config: Promise<ComposeConfig> | undefined;

  constructor(private readonly options: Options) {}

  private global(): string[] {
    return [
      'compose',
      ...this.options.files.flatMap((file) => ['--file', file]),
      ...(this.options.project ? ['--project-name', this.options.project] : []),
    ];
  }

  exec(args: string[]): Promise<string> {
    return must(run('docker', [...this.global(), ...args], { timeoutMs: 300_000 }), `docker compose ${args[0]}`);
  }

  execLoud(args: string[]): Promise<void> {
    return runLoud('docker', [...this.global(), ...args]);
  }

  /** Running containers of a service, oldest first. */
  async containers(service: Service): Promise<string[]> {
    const ids = (await this.exec(['ps', '--quiet', '--status', 'running', service])).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const created = await docker(['inspect', '--format', '{{.Created}} {{.Id}}', ...ids]);
    return created
      .split('\n')
      .sort()
      .map((line) => line.split(' ')[1]!);
  }

  /** The Compose files merged, read once: they do not change while a deploy runs. */
  private merged(): Promise<ComposeConfig> {
    this.config ??= this.exec(['config', '--format', 'json']).then((json) => JSON.parse(json) as ComposeConfig);
    return this.config;
  }

  /** Whether the Compose files define `service`, e.g. the PostgreSQL override's `migrate`. */
  async has(service: string): Promise<boolean> {
    return service in (await this.merged()).services;
  }

  /** The project's name, e.g. softy-pinko: the directory's unless -p names another. */
  async project(): Promise<string> {
    return (await this.merged()).name;
  }

  /** Each service's image reference, e.g. softy-pinko-back-end:latest, and Compose's hash of its settings. */
  async services(): Promise<Record<Service, { image: string; hash: string }>> {
    const config = await this.merged();
    const hashes = await this.exec(['config', '--hash', SERVICES.join(',')]);
    const hashOf = new Map(hashes.split('\n').map((line) => line.split(' ') as [string, string]));
    const entries = SERVICES.map((service) => {
      const image = config.services[service]?.image;
      if (!image) throw new DeployError(`${service}: no such service with an image in the Compose files`);
      return [service, { image, hash: hashOf.get(service) ?? '' }] as const;
    });
    return Object.fromEntries(entries) as Record<Service, { image: string; hash: string }>;
  }
}

async function imageId(reference: string): Promise<string | undefined> {
  const { code, stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', reference]);
  return code === 0 ? stdout.trim() : undefined;
}

const previousTag = (image: string): string => `${image.replace(/:[^:/]+$/, '')}:previous`;

interface Container {
  id: string;
  image: string;
  hash: string;
  hostname: string;
}

async function describe(ids: string[]): Promise<Container[]> {
  if (ids.length === 0) return [];
  const format = '{{.Id}} {{.Image}} {{index .Config.Labels "com.docker.compose.config-hash"}} {{.Config.Hostname}}';
  const lines = (await docker(['inspect', '--format', format, ...ids])).split('\n');
  return lines.map((line) => {
    const [id, image, hash, hostname] = line.split(' ') as [string, string, string, string];
    return { id, image, hash, hostname };
  });
}

/** What a service runs now, what it is to run, and how to put the tags back if that fails. */
interface Plan {
  service: Service;
  image: string;
  target: string;
  hash: string;
  old: Container[];
  /** The image the service runs now (for a reloaded proxy, the one its configuration came from). */
  replaced: string | undefined;
  /** The image :previous named before this deploy, if any. */
  formerPrevious: string | undefined;
  /** For the proxy: whether only its configuration changes (a reload instead of a new container). */
  reloadOnly: boolean;
}

const shortId = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/** The image a proxy's configuration comes from: its own, or the one it last reloaded from. */
async function proxyConfigImage(container: Container): Promise<string> {
  const { code, stdout } = await run('docker', ['exec', container.id, 'cat', PROXY_CONFIG_IMAGE_FILE]);
  return code === 0 && stdout.trim() !== '' ? stdout.trim() : container.image;
}

/**
 * A digest of everything in an image but its nginx configuration: paths, link targets and file contents.
 * Equal digests and equal image settings mean the difference is configuration a reload can apply.
 */
async function digestOutsideConfig(image: string): Promise<string> {
  const script =
    `find / -xdev \\( -path ${PROXY_CONFIG_DIR} -o -path /tmp -o -path /etc/hostname -o -path /etc/hosts ` +
    `-o -path /etc/resolv.conf \\) -prune -o -type f -exec md5sum {} + -o ! -type d -printf '%p -> %l\\n' ` +
    '| sort | md5sum';
  return docker(['run', '--rm', '--network', 'none', '--user', '0', '--entrypoint', 'sh', image, '-c', script]);
}

async function onlyConfigDiffers(from: string, to: string): Promise<boolean> {
  const settings = (image: string) => docker(['image', 'inspect', '--format', '{{json .Config}}', image]);
  const [a, b] = await Promise.all([settings(from), settings(to)]);
  if (a !== b) return false;
  const [x, y] = await Promise.all([digestOutsideConfig(from), digestOutsideConfig(to)]);
  return x === y;
}

async function plan(compose: Compose, service: Service, image: string, hash: string, rollback: boolean) {
  const old = await describe(await compose.containers(service));
  const formerPrevious = await imageId(previousTag(image));
  const target = rollback ? formerPrevious : await imageId(image);
  if (!target) {
    if (rollback) say(`${service}: no previous version to go back to; left as it is`);
    else throw new DeployError(`${service}: the image ${image} was not built`);
    return undefined;
  }
  const current = service === 'proxy' && old[0] ? [await proxyConfigImage(old[0])] : old.map((c) => c.image);
  if (old.length > 0 && current.every((id) => id === target) && old.every((c) => c.hash === hash)) {
    say(`${service}: unchanged (${shortId(target)})`);
    return undefined;
  }
  const reloadOnly =
    service === 'proxy' &&
    old.length === 1 &&
    old[0]!.hash === hash &&
    (await onlyConfigDiffers(old[0]!.image, target));
  return { service, image, target, hash, old, replaced: current[0], formerPrevious, reloadOnly } satisfies Plan;
}

/** Runs `nginx -t` on the proxy's new configuration, with the service's own settings, before anything changes. */
async function checkProxyConfig(compose: Compose): Promise<void> {
  const args = ['run', '--rm', '--no-deps', '--no-TTY', 'proxy', 'nginx', '-t', '-q', '-c', '/tmp/nginx/nginx.conf'];
  try {
    await compose.exec(args);
  } catch (error) {
    throw new DeployError(`proxy: the new configuration fails nginx -t, nothing was changed:\n${String(error)}`);
  }
  say('proxy: new configuration passes nginx -t');
}

/** Points the service's tag at the target and :previous at what it replaces. */
async function retag(step: Plan): Promise<void> {
  const { replaced } = step;
  await docker(['tag', step.target, step.image]);
  if (replaced && replaced !== step.target) await docker(['tag', replaced, previousTag(step.image)]);
}

/** Once the service runs the new version: keeps the last 2 versions, so the one displaced from :previous goes. */
async function forgetDisplaced(step: Plan): Promise<void> {
  const displaced = step.formerPrevious;
  if (displaced && displaced !== step.target && displaced !== step.replaced) {
    await run('docker', ['image', 'rm', displaced]); // refused, harmlessly, while a container still uses it
  }
}

async function restoreTags(step: Plan): Promise<void> {
  if (step.replaced) await docker(['tag', step.replaced, step.image]);
  if (step.formerPrevious) await docker(['tag', step.formerPrevious, previousTag(step.image)]);
}

/** Waits until every container is healthy; on failure or timeout, says which and what its last check printed. */
async function waitHealthy(service: Service, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(
      ids.map(async (id) => {
        const state = JSON.parse(await docker(['inspect', '--format', '{{json .State}}', id])) as {
          Status: string;
          Health?: { Status: string; Log?: { Output: string }[] };
        };
        return { id, status: state.Health?.Status ?? state.Status, last: state.Health?.Log?.at(-1)?.Output ?? '' };
      }),
    );
    if (states.every((state) => state.status === 'healthy')) return;
    const bad = states.find((state) => state.status === 'unhealthy' || state.status === 'exited');
    if (bad || Date.now() > deadline) {
      const which = bad ?? states.find((state) => state.status !== 'healthy')!;
      const output = which.last.trim() || '(no output)';
      throw new DeployError(
        `${service}: the new version is ${which.status} (container ${shortId(which.id)}` +
          `${bad ? '' : `, after ${timeoutMs / 1000} s`}); last health check output: ${output}`,
      );
    }
    await sleep(1000);
  }
}

/** What the proxy asks to learn which replica answers: the back-end's greeting, a page the front-end lacks (a 404). */
const PROBE_PATH: Record<Exclude<Service, 'proxy'>, string> = {
  'back-end': '/api/hello',
  'front-end': '/softy-pinko-deploy-probe',
};

/**
 * Waits until the proxy has sent a request to each of `hostnames` (known by the X-Served-By id each derives from
 * its name), asking from inside the proxy container: it is the proxy's own view, with its DNS answers, whatever
 * port or TLS it is published with.
 * A few requests a second, so the API's rate limit for that address is never reached.
 */
async function waitRouted(compose: Compose, service: Exclude<Service, 'proxy'>, hostnames: string[]): Promise<void> {
  const [proxy] = await compose.containers('proxy');
  if (!proxy) return; // Nothing routes yet: the proxy will resolve them when it starts.
  const env = await docker(['inspect', '--format', '{{json .Config.Env}}', proxy]);
  const url = (JSON.parse(env) as string[]).includes('TLS=on') ? 'https://127.0.0.1' : 'http://127.0.0.1';
  const requests = Math.min(2 * hostnames.length + 2, 10);
  const script =
    'for i in $(seq "$0"); do curl --insecure --silent --output /dev/null --dump-header - ' +
    '--header "Host: localhost" "$1"; sleep 0.1; done';
  // Each replica names itself by an opaque id derived from its host name, not by the name.
  const unseen = new Set(hostnames.map(replicaId));
  const deadline = Date.now() + 30_000; // the proxy resolves names again every 5 s (proxy.conf)
  while (unseen.size > 0) {
    if (Date.now() > deadline) {
      throw new DeployError(`${service}: the proxy did not route to ${[...unseen].join(', ')} within 30 s`);
    }
    const { stdout } = await run('docker', [
      'exec',
      proxy,
      'sh',
      '-c',
      script,
      String(requests),
      url + PROBE_PATH[service],
    ]);
    for (const match of stdout.matchAll(/^x-served-by:\s*(\S+)/gim)) unseen.delete(match[1]!);
    if (unseen.size > 0) await sleep(500);
  }
}

const PROXY_DNS_REFRESH_MS = proxyDnsRefreshMs();

/**
 * Stops containers one at a time, each finishing the requests it has (their stop signal drains them), and
 * gives the proxy time to forget each address before the next step: one gone address costs a request a
 * retry, several at once (or one during a proxy reload) could use up its tries.
 */
async function drain(ids: string[]): Promise<void> {
  for (const id of ids) {
    await docker(['stop', id], 120_000);
    await docker(['rm', id]);
    await sleep(PROXY_DNS_REFRESH_MS);
  }
}

/** Back-end or front-end: the new replicas next to the old, healthy and routed, then the old ones drained. */
async function roll(compose: Compose, step: Plan, healthTimeoutMs: number): Promise<void> {
  const service = step.service as Exclude<Service, 'proxy'>;
  const started = Date.now();
  const count = Math.max(step.old.length, 1);
  const oldIds = new Set(step.old.map((container) => container.id));
  await compose.exec([
    'up',
    '--detach',
    '--no-deps',
    '--no-recreate',
    '--scale',
    `${service}=${oldIds.size + count}`,
    service,
  ]);
  const fresh = (await describe(await compose.containers(service))).filter((container) => !oldIds.has(container.id));
  console.log(`deploy: ${service}: ${fresh.length} new starting …`);
  try {
    await waitHealthy(
      service,
      fresh.map((container) => container.id),
      healthTimeoutMs,
    );
    await waitRouted(
      compose,
      service,
      fresh.map((container) => container.hostname),
    );
  } catch (error) {
    await drain(fresh.map((container) => container.id));
    throw new DeployError(
      `${(error as Error).message}\nThe new containers were removed; the old version keeps serving.`,
    );
  }
  await drain([...oldIds]);
  const seconds = Math.round((Date.now() - started) / 1000);
  say(`${service}: ${fresh.length} new healthy, routing, draining ${oldIds.size} old… done in ${seconds} s`);
}

/**
 * The proxy: its configuration alone changed → a graceful reload inside the running container, which keeps
 * every connection; anything else, or a configuration the running nginx will not reload → a new container,
 * the one cut Docker cannot avoid (the published port belongs to one container at a time).
 */
async function replaceProxy(compose: Compose, step: Plan, healthTimeoutMs: number): Promise<void> {
  const started = Date.now();
  const [old] = step.old;
  if (step.reloadOnly && old) {
    const files = 'nginx.conf mime.types snippets conf.d templates';
    const pipeline =
      `docker run --rm --network none --entrypoint tar "$0" -C ${PROXY_CONFIG_DIR} -c ${files} ` +
      '| docker exec --interactive "$1" proxy-reload';
    const reloaded = await run('bash', ['-o', 'pipefail', '-c', pipeline, step.target, old.id]);
    if (reloaded.code === 0) {
      await docker(['exec', old.id, 'sh', '-c', `echo "$0" > ${PROXY_CONFIG_IMAGE_FILE}`, step.target]);
      say(`proxy: configuration reloaded in place, no connection dropped… done in ${Date.now() - started} ms`);
      return;
    }
    // 2: valid (nginx -t passed above) but not reloadable into what runs; a new container starts with it.
    if (reloaded.code !== 2) throw new DeployError(`proxy: reload failed: ${reloaded.stderr.trim()}`);
    say('proxy: nginx would not reload this configuration (its log says why); replacing the container instead');
  }
  await compose.exec(['up', '--detach', '--no-deps', '--force-recreate', 'proxy']);
  const [fresh] = await compose.containers('proxy');
  await waitHealthy('proxy', [fresh!], healthTimeoutMs);
  say(`proxy: new container healthy… done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Where a deploy of `project` holds its lock: `<tmp>/softy-pinko-deploy-<project>.lock`. */
const lockPath = (project: string): string => join(tmpdir(), `softy-pinko-deploy-${project}`);

/**
 * One deploy of a project at a time: a second one would see the first one's new and old containers side by
 * side and drain the wrong ones. The lock goes with the process, even on Ctrl-C or a crash (proper-lockfile
 * treats a lock it stopped refreshing as stale).
 */
async function lockProject(project: string): Promise<void> {
  try {
    await lock(lockPath(project), { realpath: false, stale: 10_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    throw new DeployError(`another deploy of ${project} is running; nothing was changed, try again once it ends`);
  }
}

async function deploy(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  await requireCompose(); // Compose v2 only: it names the containers' settings hash (config --hash)
  const compose = new Compose(options);
  await lockProject(await compose.project());
  const started = Date.now();
  if (!options.rollback) {
    say('building images …');
    await compose.execLoud(['build', ...SERVICES]);
  }
  const services = await compose.services();
  const steps: Plan[] = [];
  for (const service of SERVICES) {
    const { image, hash } = services[service];
    const step = await plan(compose, service, image, hash, options.rollback);
    if (step) steps.push(step);
  }
  // Until a step is applied its tag stays on what runs, so a failure leaves no untried image for
  // `docker compose up` to start. The build has already moved them: put them back first.
  for (const step of steps) await restoreTags(step);
  const proxyStep = steps.find((step) => step.service === 'proxy');
  if (proxyStep) {
    // The new configuration is checked under the service's tag, so point it there for the check only.
    await docker(['tag', proxyStep.target, proxyStep.image]);
    try {
      await checkProxyConfig(compose);
    } finally {
      await restoreTags(proxyStep);
    }
  }
  for (const step of steps) {
    await retag(step);
    try {
      if (step.service === 'back-end' && (await compose.has('migrate'))) {
        // The new image's tag is in place: its migrations run to completion before any new back-end starts.
        say('back-end: applying migrations …');
        await compose.execLoud(['run', '--rm', '--no-deps', '-T', 'migrate']).catch(() => {
          throw new DeployError('back-end: the migrations failed (see above); the old version keeps serving');
        });
      }
      if (step.service === 'proxy') await replaceProxy(compose, step, options.healthTimeoutMs);
      else await roll(compose, step, options.healthTimeoutMs);
    } catch (error) {
      await restoreTags(step);
      throw error;
    }
    await forgetDisplaced(step);
  }
  say(`done in ${Math.round((Date.now() - started) / 1000)} s`);
}

deploy(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof DeployError ? `deploy: ${error.message}` : error);
  process.exit(1);
});
