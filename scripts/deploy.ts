/**
 * `npm run deploy`: ships the working tree's release (its images named by the commit) to the running Compose
 * stack with no failed request, service by service: back-end and front-end roll, the proxy reloads a
 * configuration-only change in place or is replaced, migrations run first from the new image, unchanged services
 * are left alone. How and why: deploy/README.md and docs/operations.md.
 *
 *   npm run deploy [-- [--rollback] [-f FILE]… [-p PROJECT] [--health-timeout SECONDS]]
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lock } from 'proper-lockfile';
import { buildEnv, previousRelease, readReleases, recordRelease, type BuildEnv } from './lib/release.js';
import { Compose, ComposeError } from './lib/compose.js';
import {
  DeployError,
  SERVICES,
  describe,
  difference,
  proxyConfigImage,
  replaceProxy,
  roll,
  say,
  shortId,
  type Container,
  type Plan,
  type Service,
} from './lib/rollout.js';
import { imageId } from './lib/stack.js';

type Options = ReturnType<typeof parseOptions>;

function parseOptions(argv: string[]) {
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

type ComposeConfig = { name: string; services: Record<string, { image?: string }> };

/** The stack as `docker compose` sees it with this deploy's -f and -p, its images named by `release`. */
const stackOf = (options: Options, release: Partial<BuildEnv> = {}): Compose =>
  new Compose({ files: options.files, project: options.project, env: release });

/** Compose's hash of a service's settings, with its image named by release `tag`. */
const settingsHash = (compose: Compose, service: Service, tag: string): Promise<string> =>
  compose.output(['config', '--hash', service], { TAG: tag }).then((line) => line.split(' ')[1] ?? '');

/** Whether each container's Compose settings are today's but for the release its image is named by. */
async function sameSettings(compose: Compose, service: Service, old: Container[]): Promise<boolean> {
  if (old.length === 0) return false;
  const hashes = await Promise.all(old.map((c) => settingsHash(compose, service, c.reference.replace(/^.*:/, ''))));
  return old.every((container, i) => container.hash === hashes[i]);
}

async function plan(compose: Compose, service: Service, target: string): Promise<Plan | undefined> {
  const old = await describe(await compose.containers(service));
  const current = service === 'proxy' && old[0] ? [await proxyConfigImage(old[0])] : old.map((c) => c.image);
  const settingsKept = await sameSettings(compose, service, old);
  const changes = await Promise.all(current.map((id) => difference(id, target)));
  if (settingsKept && changes.every((change) => change === 'none')) {
    say(`${service}: unchanged (${shortId(target)})`);
    return undefined;
  }
  const reloadOnly =
    service === 'proxy' && old.length === 1 && settingsKept && (await difference(old[0]!.image, target)) !== 'other';
  return { service, target, old, reloadOnly };
}

/** Runs `nginx -t` on the proxy's new configuration, with the service's own settings, before anything changes. */
async function checkProxyConfig(compose: Compose): Promise<void> {
  const args = ['run', '--rm', '--no-deps', '--no-TTY', 'proxy', 'nginx', '-t', '-q', '-c', '/tmp/nginx/nginx.conf'];
  await compose.output(args).catch((error: unknown) => {
    throw new DeployError(`proxy: the new configuration fails nginx -t, nothing was changed:\n${String(error)}`);
  });
  say('proxy: new configuration passes nginx -t');
}

/**
 * One deploy of a project at a time (`<tmp>/softy-pinko-deploy-<project>.lock`): a second would drain the first
 * one's containers. The lock goes with the process, even on a crash (proper-lockfile: stale when not refreshed).
 */
async function lockProject(project: string): Promise<void> {
  try {
    await lock(join(tmpdir(), `softy-pinko-deploy-${project}`), { realpath: false, stale: 10_000 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
    throw new DeployError(`another deploy of ${project} is running; nothing was changed, try again once it ends`);
  }
}

/** The release to deploy: the working tree's, or with --rollback the one before the last deployed. */
async function chooseRelease(options: Options, project: string): Promise<Partial<BuildEnv> | undefined> {
  if (!options.rollback) return buildEnv();
  const previous = previousRelease(readReleases(project));
  if (!previous) say('no previous release to go back to; left as it is');
  return previous && { TAG: previous.tag };
}

/** Builds the services whose image this release lacks (a tag, once given, is never moved); their image ids. */
async function buildMissing(compose: Compose, tag: string, rollback: boolean): Promise<Record<Service, string>> {
  const { services } = await compose.merged<ComposeConfig>();
  const unnamed = SERVICES.find((service) => !services[service]?.image);
  if (unnamed) throw new DeployError(`${unnamed}: no such service with an image in the Compose files`);
  const ids = () => Promise.all(SERVICES.map((service) => imageId(services[service]!.image!)));
  const found = await ids();
  const absent = SERVICES.filter((_, i) => !found[i]);
  if (absent.length > 0 && rollback) throw new DeployError(`release ${tag}: ${absent.join(', ')} no longer built`);
  if (absent.length > 0) {
    say(`building images of release ${tag}: ${absent.join(', ')} …`);
    await compose.execLoud(['build', ...absent]);
  } else say(`release ${tag}: images built already`);
  const built = absent.length > 0 ? await ids() : found;
  return Object.fromEntries(SERVICES.map((service, i) => [service, built[i]!])) as Record<Service, string>;
}

async function deploy(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  const { name: project } = await stackOf(options).merged<ComposeConfig>();
  await lockProject(project);
  const release = await chooseRelease(options, project);
  if (!release) return;
  const compose = stackOf(options, release);
  const started = Date.now();
  const targets = await buildMissing(compose, release.TAG!, options.rollback);
  const steps: Plan[] = [];
  for (const service of SERVICES) {
    const step = await plan(compose, service, targets[service]);
    if (step) steps.push(step);
  }
  if (steps.some((step) => step.service === 'proxy')) await checkProxyConfig(compose);
  for (const step of steps) {
    if (step.service === 'back-end' && 'migrate' in (await compose.merged<ComposeConfig>()).services) {
      // Its migrations run to completion, from the new image, before any new back-end starts.
      say('back-end: applying migrations …');
      await compose.execLoud(['run', '--rm', '--no-deps', '-T', 'migrate']).catch(() => {
        throw new DeployError('back-end: the migrations failed (see above); the old version keeps serving');
      });
    }
    if (step.service === 'proxy') await replaceProxy(compose, step, options.healthTimeoutMs);
    else await roll(compose, step, options.healthTimeoutMs);
  }
  const at = new Date().toISOString();
  recordRelease(project, { tag: release.TAG!, at, images: targets, rollback: options.rollback });
  say(`release ${release.TAG} deployed in ${Math.round((Date.now() - started) / 1000)} s`);
}

deploy(process.argv.slice(2)).catch((error: unknown) => {
  const expected = error instanceof DeployError || error instanceof ComposeError;
  console.error(expected ? `deploy: ${error.message}` : error);
  process.exit(1);
});
