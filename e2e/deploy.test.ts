/**
 * `npm run deploy` under a steady mixed load from the host on loopback (page visits with their assets, the
 * API, contact POSTs sent as the page sends them: about 100 requests a second, bounded in time). Each kind
 * of change ships with no failed request and every acknowledged message stored once; a version that never gets healthy is refused while the
 * old one keeps serving; --rollback goes back. The next versions are small Dockerfiles layered on the
 * running images, so each scenario changes exactly one thing.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readReleases, releasesFile } from '../scripts/lib/release.js';
import { freePort, replicaId, run, type RunResult } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { forgetReleases, runDeploy } from './deploys.js';
import { expectNoFailedRequest, visitorLoad, type LoadResult } from './load.js';

const skipReason = inject('stackSkipReason');
const PROJECT = 'softy-pinko-deploy';
const TAG = 'deploy';
const LOAD_CEILING_MS = 600_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Compose override giving `service` a next version built from `dockerfile` (with BASE as its FROM). */
function override(dir: string, name: string, service: string, base: string, dockerfile: string): string {
  writeFileSync(join(dir, `${name}.Dockerfile`), dockerfile.trimStart());
  const file = join(dir, `${name}.yml`);
  const build = { dockerfile: join(dir, `${name}.Dockerfile`), args: { BASE: base } };
  writeFileSync(file, JSON.stringify({ services: { [service]: { build } } }));
  return file;
}

describe.skipIf(skipReason !== '').sequential('npm run deploy', () => {
  let stack: TestStack;
  let env: Record<string, string>;
  let overrides: string;
  const files: Record<string, string> = {};
  const acknowledged = new Map<string, string>(); // message text → the id its 201 carried

  // The release each service runs: a deploy names its images by a new tag, never moving an old one.
  const image = (service: string) => `softy-pinko-${service}:${stack.options.tag}`;
  let releases = 0;
  const imageId = async (reference: string) =>
    (await run('docker', ['image', 'inspect', '--format', '{{.Id}}', reference])).stdout.trim();
  // The ids the service's containers name themselves by in X-Served-By (derived from their host names).
  const replicaIds = async (service: string) =>
    Promise.all(
      (await stack.containers(service)).map(async (id) =>
        replicaId(await stack.inspect<string>(id, '.Config.Hostname')),
      ),
    );

  /** Runs `npm run deploy` against this stack, with the same settings it was started with, as a new release. */
  async function deploy(args: string[], extra: { env?: Record<string, string>; files?: string[] } = {}) {
    const tag = `${TAG}-${(releases += 1)}`;
    const result = await runDeploy(PROJECT, ['docker-compose.yml', ...(extra.files ?? [])], {
      args,
      env: { ...env, TAG: tag, ...extra.env },
    });
    if (result.code === 0) stack.options.tag = readReleases(PROJECT).at(-1)!.tag;
    return result;
  }

  /**
   * The next version of `service`: a Dockerfile of `steps` on top of what it runs when first asked (tagged
   * `-base`, so a later build of the same steps gives the same image), as a Compose override file.
   */
  async function nextVersion(name: string, service: string, steps: string): Promise<string> {
    const base = `softy-pinko-${service}:${TAG}-base`;
    if (!(await imageId(base))) await run('docker', ['tag', image(service), base]);
    return override(overrides, name, service, base, `ARG BASE\nFROM \${BASE}\n${steps.trim()}\n`);
  }

  /** Runs `npm run deploy` in the middle of a steady load (underLoad). */
  async function deployUnderLoad(scenario: string, args: string[], extra: Parameters<typeof deploy>[1]) {
    let result: RunResult | undefined;
    const results = await underLoad(scenario, async () => {
      result = await deploy(args, extra);
    });
    return { result: result!, results };
  }

  /** Runs `operation` under the page's visitors (visitorLoad); remembers each acknowledged message by its text. */
  async function underLoad(scenario: string, operation: () => Promise<void>): Promise<LoadResult[]> {
    const run_ = randomUUID().slice(0, 8);
    const message = (index: number) => ({
      name: `Deploy ${index}`,
      email: 'deploy@example.com',
      message: `${run_} #${index}`,
    });
    const load = await visitorLoad(stack, scenario, operation, { maxDurationMs: LOAD_CEILING_MS, message });
    for (const { text, id } of load.acknowledged) acknowledged.set(text, id);
    return load.results;
  }

  /** Every acknowledged message is in the store exactly once, under the id it was acknowledged with. */
  async function expectStoredOnce(): Promise<void> {
    const [backEnd] = await stack.containers('back-end');
    const { stdout } = await run('docker', ['exec', backEnd!, 'cat', '/data/contact-messages.jsonl']);
    const stored = new Map<string, string[]>();
    for (const line of stdout.split('\n').filter(Boolean)) {
      const { id, message } = JSON.parse(line) as { id: string; message: string };
      stored.set(message, [...(stored.get(message) ?? []), id]);
    }
    expect(acknowledged.size).toBeGreaterThan(0);
    const wrong = [...acknowledged].filter(([text, id]) => stored.get(text)?.join() !== id);
    expect(wrong, 'acknowledged messages missing, changed or stored twice').toEqual([]);
  }

  /** The replicas that answer `count` requests to `path` through the proxy. */
  async function answering(path: string, count = 30): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < count; i += 1) {
      const res = await fetch(`${stack.baseUrl}${path}`);
      await res.arrayBuffer();
      seen.add(res.headers.get('x-served-by') ?? '');
    }
    return seen;
  }

  beforeAll(async () => {
    // All load comes from one address, so the per-client API rate limit is lifted (stack.test.ts tests it).
    const extra = { API_RATE_LIMIT: '100000r/s', API_RATE_BURST: '100000', REVISION: 'v1' };
    stack = new TestStack(PROJECT, await freePort(), extra, { tag: TAG });
    env = { ...extra, PROXY_PORT: String(stack.proxyPort) };
    rmSync(releasesFile(PROJECT), { force: true });
    overrides = mkdtempSync(join(tmpdir(), 'softy-pinko-deploy-'));
    await stack.down();
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
    if (overrides) rmSync(overrides, { recursive: true, force: true });
    await forgetReleases(PROJECT, TAG);
  });

  it('ships a changed back-end at 1 replica: no failed request, the new one answers, the others untouched', async () => {
    const before = await replicaIds('back-end');
    const untouched = [...(await stack.containers('front-end')), ...(await stack.containers('proxy'))];
    let result!: RunResult;
    let second!: RunResult;
    const results = await underLoad('deploy back-end ×1', async () => {
      const first = deploy([], { env: { REVISION: 'v2' } });
      // A second deploy while the first one builds (it takes the project's lock before): refused.
      await sleep(5000);
      second = await deploy([], { env: { REVISION: 'v2' } });
      result = await first;
    });
    expectNoFailedRequest(results);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`deploy: another deploy of ${PROJECT} is running; nothing was changed`);
    expect(second.stdout).not.toContain('building images');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/back-end: 1 new healthy, routing, draining 1 old… done in \d+ s/);
    expect(result.stdout).toMatch(/front-end: unchanged/);
    expect(result.stdout).toMatch(/proxy: unchanged/);
    // The release's own tag, and the OCI labels that say what it was built from.
    expect(stack.options.tag).toBe(`${TAG}-1`);
    const labels = await run('docker', ['image', 'inspect', '--format', '{{json .Config.Labels}}', image('back-end')]);
    expect(JSON.parse(labels.stdout)).toMatchObject({
      'org.opencontainers.image.revision': 'v2',
      'org.opencontainers.image.version': expect.any(String),
      'org.opencontainers.image.source': expect.any(String),
      'org.opencontainers.image.created': expect.any(String),
    });
    const after = await replicaIds('back-end');
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect(await answering('/api/hello')).toEqual(new Set(after));
    expect([...(await stack.containers('front-end')), ...(await stack.containers('proxy'))]).toEqual(untouched);
    await expectStoredOnce();
  });

  it('ships a changed back-end at 3 replicas: no failed request, and it stays at 3', async () => {
    await stack.scaleBackEnd(3);
    await stack.waitHealthy();
    const before = await replicaIds('back-end');
    expect(before).toHaveLength(3);
    const { result, results } = await deployUnderLoad('deploy back-end ×3', [], { env: { REVISION: 'v3' } });
    expectNoFailedRequest(results);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/back-end: 3 new healthy, routing, draining 3 old/);
    const after = await replicaIds('back-end');
    expect(after).toHaveLength(3);
    expect(after.filter((name) => before.includes(name))).toEqual([]);
    expect(await answering('/api/hello')).toEqual(new Set(after));
    await expectStoredOnce();
  });

  it('ships a changed front-end (a new hashed asset the page refers to): no failed visit', async () => {
    // What a Vite build of a changed script gives: the module under a new hashed name, the page's inline loader
    // naming it, and that loader's new CSP hash. The hashes are worked out here: the nginx image has no tool for it.
    const served = await (await fetch(`${stack.baseUrl}/`)).text();
    const old = /import\("\/(assets\/main-[^"]+\.js)"\)/.exec(served)?.[1];
    const loader = [...served.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].find(
      (m) => old && m[1]!.includes(old),
    )?.[1];
    expect(loader, 'the page loads its script through an inline loader').toBeDefined();
    const next = `assets/next-${createHash('md5').update(old!).digest('hex').slice(0, 8)}.js`;
    const cspHash = (text: string) => `sha256-${createHash('sha256').update(text).digest('base64')}`;
    files.frontEnd = await nextVersion(
      'front-end-next',
      'front-end',
      `
USER 0
RUN cd /usr/share/nginx/html \\
    && { cat ${old}; echo '// the next version'; } > ${next} \\
    && sed -i "s|/${old}|/${next}|" index.html \\
    && sed -i "s|${cspHash(loader!)}|${cspHash(loader!.replace(old!, next))}|" /etc/nginx/snippets/csp-hashes.conf \\
    && gzip -9 --keep --no-name --force ${next} index.html
USER 101:101`,
    );
    const { result, results } = await deployUnderLoad('deploy front-end', [], {
      env: { REVISION: 'v3' },
      files: [files.frontEnd!],
    });
    expectNoFailedRequest(results);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/front-end: 1 new healthy, routing, draining 1 old/);
    expect(result.stdout).toMatch(/back-end: unchanged/);
    const page = await (await fetch(`${stack.baseUrl}/`)).text();
    const asset = /import\("(\/assets\/next-[0-9a-f]{8}\.js)"\)/.exec(page)?.[1];
    expect(asset, 'the page names the new script').toBeDefined();
    const policy = (await fetch(`${stack.baseUrl}/`)).headers.get('content-security-policy') ?? '';
    expect(policy, "the policy allows the new loader's hash").toContain(cspHash(loader!.replace(old!, next)));
    expect((await fetch(`${stack.baseUrl}${asset}`)).status).toBe(200);
    expect(await answering('/softy-pinko-deploy-probe')).toEqual(new Set(await replicaIds('front-end')));
    await expectStoredOnce();
  });

  it('ships a proxy configuration change by a graceful reload: no failed request, same container', async () => {
    files.proxy = await nextVersion(
      'proxy-next',
      'proxy',
      `
USER 0
# A configuration change alone: one more header on every answer.
RUN echo 'add_header X-Deploy-Check next always;' >> /etc/nginx/snippets/security-headers.conf
USER 101:101`,
    );
    const [proxyBefore] = await stack.containers('proxy');
    const { result, results } = await deployUnderLoad('deploy proxy configuration', [], {
      env: { REVISION: 'v3' },
      files: [files.frontEnd!, files.proxy!],
    });
    expectNoFailedRequest(results);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/proxy: new configuration passes nginx -t/);
    expect(result.stdout).toMatch(/proxy: configuration reloaded in place/);
    expect(result.stdout).toMatch(/front-end: unchanged/);
    expect(await stack.containers('proxy')).toEqual([proxyBefore]);
    expect((await fetch(`${stack.baseUrl}/api/hello`)).headers.get('x-deploy-check')).toBe('next');
    // A restart of that container serves what it was serving, not its image's older configuration.
    expect((await run('docker', ['restart', proxyBefore!])).code).toBe(0);
    await stack.waitHealthy();
    expect((await fetch(`${stack.baseUrl}/api/hello`)).headers.get('x-deploy-check')).toBe('next');
    await expectStoredOnce();
  });

  it('checks the proxy configuration first: a broken one changes nothing, not even a changed back-end', async () => {
    const broken = await nextVersion(
      'proxy-broken',
      'proxy',
      `
USER 0
# A configuration nginx refuses: a directive without its closing semicolon.
RUN echo 'add_header X-Broken yes' >> /etc/nginx/snippets/security-headers.conf
USER 101:101`,
    );
    const before = [...(await stack.containers('back-end')), ...(await stack.containers('proxy'))];
    const backEndImage = await imageId(image('back-end'));
    const result = await deploy([], { env: { REVISION: 'v4' }, files: [files.frontEnd!, broken] });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/proxy: the new configuration fails nginx -t, nothing was changed/);
    expect(result.stdout).not.toMatch(/back-end: \d+ new/);
    expect([...(await stack.containers('back-end')), ...(await stack.containers('proxy'))]).toEqual(before);
    expect(await imageId(image('back-end')), 'the tag still names the running version').toBe(backEndImage);
  });

  it('refuses a back-end that never gets healthy: no failed request, the old one serves, exit 1 says why', async () => {
    const broken = await nextVersion(
      'back-end-broken',
      'back-end',
      `
# A release whose health route is broken: its check never passes, though it answers requests.
HEALTHCHECK --interval=2s --timeout=3s --start-period=2s --retries=2 \\
    CMD ["node", "-e", "console.log('health route broken'); process.exit(1)"]`,
    );
    const before = await replicaIds('back-end');
    const imageBefore = await imageId(image('back-end'));
    const { result, results } = await deployUnderLoad(
      'deploy a back-end that fails its health check',
      ['--health-timeout', '60'],
      {
        env: { REVISION: 'v3' },
        files: [files.frontEnd!, files.proxy!, broken],
      },
    );
    expectNoFailedRequest(results);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/back-end: the new version is unhealthy/);
    expect(result.stderr).toMatch(/last health check output: health route broken/);
    expect(result.stderr).toMatch(/the old version keeps serving/);
    expect(await replicaIds('back-end')).toEqual(before);
    expect(await answering('/api/hello')).toEqual(new Set(before));
    expect(await imageId(image('back-end')), 'the tag still names the running version').toBe(imageBefore);
    await expectStoredOnce();
  });

  it('--rollback deploys the release before the last one: no failed request', async () => {
    // The last release shipped the proxy's configuration; the one before it had the old one.
    const previous = readReleases(PROJECT).at(-2)!;
    const { result, results } = await deployUnderLoad('deploy --rollback', ['--rollback'], {
      files: [files.frontEnd!, files.proxy!],
    });
    expectNoFailedRequest(results);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`release ${previous.tag} deployed`));
    expect(result.stdout).toMatch(/back-end: unchanged/);
    expect(result.stdout).toMatch(/front-end: unchanged/);
    expect(result.stdout).toMatch(/proxy: configuration reloaded in place/);
    for (const service of ['back-end', 'front-end']) {
      for (const id of await stack.containers(service)) {
        expect(await stack.inspect(id, '.Image')).toBe(previous.images[service]);
      }
    }
    expect((await fetch(`${stack.baseUrl}/api/hello`)).headers.get('x-deploy-check')).toBeNull();
    expect(readReleases(PROJECT).at(-1)).toMatchObject({ tag: previous.tag, rollback: true });
    await expectStoredOnce();
  });

  it('replaces the proxy image with the shortest cut Docker allows, and measures it', async () => {
    const replaced = await nextVersion(
      'proxy-image',
      'proxy',
      `
# A change to the image itself, not its configuration: a reload cannot apply it.
ENV SOFTY_PINKO_PROXY_BUILD=next`,
    );
    const [proxyBefore] = await stack.containers('proxy');
    // The running release's other settings (the rollback's), so that only the proxy changes.
    const { result, results } = await deployUnderLoad('deploy a new proxy image', [], {
      env: { REVISION: 'v3' },
      files: [files.frontEnd!, replaced],
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/back-end: unchanged/);
    expect(result.stdout).toMatch(/front-end: unchanged/);
    expect(result.stdout).toMatch(/proxy: new container healthy/);
    expect(await stack.containers('proxy')).not.toEqual([proxyBefore]);
    const sent = results.reduce((sum, r) => sum + r.sent, 0);
    const failed = results.reduce((sum, r) => sum + r.sent - (r.statuses['200'] ?? 0) - (r.statuses['201'] ?? 0), 0);
    const cutMs = Math.max(...results.map((r) => r.failureWindowMs));
    console.log(`[scenario] proxy image replacement: ${failed} of ${sent} requests failed, within ${cutMs} ms`);
    expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
    await expectStoredOnce();
  });

  it('replaces the proxy when nginx will not reload a configuration that passes nginx -t', async () => {
    const rekeyed = await nextVersion(
      'proxy-rekeyed',
      'proxy',
      `
ENV SOFTY_PINKO_PROXY_BUILD=next
USER 0
# The rate limit keyed on the address's text: a valid configuration, but a running nginx refuses to reload a
# zone under a new key (it keeps the old configuration and says why in its log).
RUN sed -i 's/limit_req_zone [$]binary_remote_addr/limit_req_zone $remote_addr/' /etc/nginx/conf.d/default.conf
USER 101:101`,
    );
    const [proxyBefore] = await stack.containers('proxy');
    const result = await deploy([], { env: { REVISION: 'v3' }, files: [files.frontEnd!, rekeyed] });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/back-end: unchanged/);
    expect(result.stdout).toMatch(/proxy: nginx would not reload this configuration .*replacing the container/);
    expect(result.stdout).toMatch(/proxy: new container healthy/);
    const [proxyAfter] = await stack.containers('proxy');
    expect(proxyAfter).not.toBe(proxyBefore);
    const rendered = await run('docker', ['exec', proxyAfter!, 'cat', '/tmp/nginx/conf.d/default.conf']);
    expect(rendered.stdout).toMatch(/limit_req_zone \$remote_addr zone=api/);
    expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
  });
});
