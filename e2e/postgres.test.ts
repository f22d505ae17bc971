/**
 * Contact messages in PostgreSQL (docker-compose.postgres.yml) with the back-end scaled to 3, under POST load:
 * every acknowledged message is stored exactly once while a replica is killed, the API answers only 201s and
 * JSON 503s while the database is stopped and recovers by itself, and the page's own retry stores one row.
 * Last, `npm run deploy` ships a back-end with a new migration: applied before the new back-end starts, while
 * the old one serves with no failed request; a migration that fails changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { browserSkipReason, launchBrowser, sendContactForm } from './browser.js';
import { describeLoad, expectNoFailedRequest, startLoad, visitorLoad, type LoadResult } from './load.js';
import {
  REPO_ROOT,
  databaseSecretsEnv,
  dotEnv,
  freePort,
  imageId,
  replicaId,
  run,
  runLoud,
  type RunResult,
} from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { forgetReleases, runDeploy } from './deploys.js';

const skipReason = inject('stackSkipReason');
const RATE = 100; // POSTs per second, spread over 3 replicas
/** The suite's releases are tagged e2e-postgres-N, each a new tag: a deploy never moves one. */
const RELEASE = 'e2e-postgres';
/** What the deploy scenario builds its next versions on: the back-end the stack runs, under a tag of its own. */
const BACK_END_BASE = 'softy-pinko-back-end:e2e-postgres-base';
/** Marks those next versions, so the ones no tag names any more are pruned afterwards. */
const NEXT_LABEL = 'org.softy-pinko.e2e=postgres-deploy';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The repository's migration files, in order, e.g. ['001_contact_messages.sql']. */
const shippedMigrations = (): string[] =>
  readdirSync(`${REPO_ROOT}back-end/src/migrations`)
    .filter((name) => name.endsWith('.sql'))
    .sort();

/** postgres:17, or the look-alike images:offline builds when no registry answers (it writes POSTGRES_IMAGE). */
async function ensurePostgresImage(): Promise<void> {
  const image = dotEnv().POSTGRES_IMAGE ?? 'postgres:17';
  if (await imageId(image)) return;
  if ((await run('docker', ['pull', image], { timeoutMs: 300_000 })).code === 0) return;
  console.log('[postgres] no postgres:17 from a registry: building the look-alike (npm run images:offline)');
  await runLoud('bash', ['scripts/images-offline.sh']);
}

interface Sent {
  key: string;
  startedAt: number;
}

/** What a POST load saw beyond the status tally: the ids acknowledged per key, and every odd answer. */
interface PostLoad {
  requests: Map<number, Sent>;
  acknowledged: Map<string, string>;
  odd: string[];
  slowest503Ms: number;
}

describe.skipIf(skipReason !== '').sequential('contact messages in PostgreSQL, back-end scaled to 3', () => {
  let stack: TestStack;
  let contactUrl: string;

  /** Runs SQL in the db container as the application's user; answers psql's unaligned rows. */
  async function sql(query: string): Promise<string[]> {
    const { code, stdout, stderr } = await stack.exec(
      ['exec', '-T', 'db', 'psql', '-U', 'softy', '-d', 'softy_pinko', '-v', 'ON_ERROR_STOP=1', '-Atc', query],
      30_000,
    );
    if (code !== 0) throw new Error(`psql failed: ${stderr}`);
    return stdout.split('\n').filter((line) => line !== '');
  }

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(contactUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  const aMessage = (label: string) => ({ name: `Load ${label}`, email: 'load@example.com', message: 'Exactly once.' });

  /** A steady POST load, each request with a key of its own; `operation` runs 5 s in, the load ends 5 s after. */
  async function postLoad(
    scenario: string,
    operation: (load: PostLoad) => Promise<void>,
  ): Promise<LoadResult & PostLoad> {
    const extra: PostLoad = { requests: new Map(), acknowledged: new Map(), odd: [], slowest503Ms: 0 };
    const load = startLoad(contactUrl, {
      ratePerSecond: RATE,
      maxDurationMs: 100_000,
      init: (index) => {
        const key = randomUUID();
        extra.requests.set(index, { key, startedAt: Date.now() });
        return {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(aMessage(`${scenario} ${index}`)),
        };
      },
      onResponse: (index, response, body) => {
        const { key, startedAt } = extra.requests.get(index)!;
        if (response.status === 201) {
          extra.acknowledged.set(key, (JSON.parse(body) as { id: string }).id);
        } else if (response.status === 503) {
          extra.slowest503Ms = Math.max(extra.slowest503Ms, Date.now() - startedAt);
          const json = /^application\/json/.test(response.headers.get('content-type') ?? '');
          if (!json || !response.headers.get('retry-after')) extra.odd.push(`503 json=${json} ${body.slice(0, 100)}`);
        } else if (extra.odd.length < 20) {
          extra.odd.push(`${response.status} ${body.slice(0, 200)}`);
        }
      },
    });
    await sleep(5_000);
    await operation(extra);
    await sleep(5_000);
    const result = await load.stop();
    console.log(`${describeLoad(scenario, result)}; odd answers: ${extra.odd.slice(0, 5).join(' | ') || 'none'}`);
    return { ...result, ...extra };
  }

  /** The ids stored under each of `keys`, as key → ids. */
  async function storedIds(keys: string[]): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    const rows: string[] = [];
    // The keys are UUIDs we made, so they are safe inside a literal. A thousand a query: psql takes the query as
    // one argument, and Linux refuses an argument over 128 KB (E2BIG), about 3,300 keys.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const query = `SELECT idempotency_key || ' ' || id FROM contact_messages WHERE idempotency_key IN ('${batch.join("','")}')`;
      rows.push(...(await sql(query)));
    }
    for (const row of rows) {
      const [key, id] = row.split(' ') as [string, string];
      found.set(key, [...(found.get(key) ?? []), id]);
    }
    return found;
  }

  let overrides: string | undefined;
  /** The back-end image the stack was built with. */
  let backEndBuilt: string | undefined;
  let releases = 0;
  /** The back-end image the stack runs now, by the release tag it was deployed under. */
  const backEnd = () => imageId(`softy-pinko-back-end:${stack.options.tag ?? 'e2e'}`);
  /** The migration the deploy scenario shipped (file name → SQL), which the release after it carries too. */
  let shippedByDeploy: Record<string, string> | undefined;

  /** Runs `npm run deploy` against this stack with its own settings and `files` layered over its Compose files. */
  async function deploy(files: string[]): Promise<RunResult> {
    const composeFiles = ['docker-compose.yml', 'docker-compose.postgres.yml', ...files];
    const tag = `${RELEASE}-${(releases += 1)}`;
    const result = await runDeploy(stack.project, composeFiles, {
      env: { ...stack.env, TAG: tag },
      timeoutMs: 600_000,
    });
    if (result.code === 0) stack.options.tag = tag;
    return result;
  }

  /** A Compose override whose back-end is the one built from source plus `migrations` (file name → SQL). */
  function nextBackEnd(name: string, migrations: Record<string, string>): string {
    overrides ??= mkdtempSync(join(tmpdir(), 'softy-pinko-postgres-deploy-'));
    const dockerfile = join(overrides, `${name}.Dockerfile`);
    const steps = Object.entries(migrations).map(([file, sql]) => `RUN echo '${sql}' > dist/migrations/${file}`);
    const lines = ['ARG BASE', 'FROM ${BASE}', `LABEL ${NEXT_LABEL}`, 'USER 0', ...steps, 'USER 1000:1000'];
    writeFileSync(dockerfile, `${lines.join('\n')}\n`);
    const file = join(overrides, `${name}.yml`);
    const build = { dockerfile, args: { BASE: BACK_END_BASE } };
    writeFileSync(file, JSON.stringify({ services: { 'back-end': { build } } }));
    return file;
  }

  /** The page's visitors while `operation` runs (visitorLoad), none failing; answers key → acknowledged id. */
  async function visitorsDuring(scenario: string, operation: () => Promise<void>): Promise<Map<string, string>> {
    const message = (index: number) => aMessage(`${scenario} ${index}`);
    const { results, acknowledged } = await visitorLoad(stack, scenario, operation, {
      maxDurationMs: 300_000,
      message,
    });
    expectNoFailedRequest(results);
    return new Map(acknowledged.map(({ key, id }) => [key, id]));
  }

  /** Every acknowledged message is stored exactly once, under the id it was acknowledged with. */
  async function expectStoredOnce(acknowledged: Map<string, string>): Promise<void> {
    expect(acknowledged.size).toBeGreaterThan(0);
    const stored = await storedIds([...acknowledged.keys()]);
    const wrong = [...acknowledged].filter(([key, id]) => stored.get(key)?.join() !== id);
    expect(wrong, 'acknowledged messages missing, changed or stored twice').toEqual([]);
  }

  const schemaVersions = async (): Promise<number[]> =>
    (await sql('SELECT name FROM pgmigrations ORDER BY id')).map((name) => parseInt(name, 10));

  beforeAll(async () => {
    await ensurePostgresImage();
    // All load comes from one client address, so the per-client API rate limit is lifted here.
    stack = new TestStack(
      'softy-pinko-postgres',
      await freePort(),
      { API_RATE_LIMIT: '100000r/s', API_RATE_BURST: '100000', ...(await databaseSecretsEnv()) },
      { files: [`${REPO_ROOT}docker-compose.postgres.yml`] },
    );
    contactUrl = `${stack.baseUrl}/api/contact`;
    await stack.down();
    await stack.up();
    await stack.scaleBackEnd(3);
    await stack.waitHealthy();
  });

  afterAll(async () => {
    if (stack) await stack.down();
    if (overrides) rmSync(overrides, { recursive: true, force: true });
    await forgetReleases(stack.project, RELEASE);
    await run('docker', ['image', 'rm', BACK_END_BASE]);
    await run('docker', ['image', 'prune', '--force', '--filter', `label=${NEXT_LABEL}`]);
  });

  it('keeps db on the internal network only, its data on a named volume, its password in a secret', async () => {
    const [db] = await stack.containers('db');
    const networks = Object.keys(await stack.inspect<Record<string, unknown>>(db!, '.NetworkSettings.Networks'));
    expect(networks).toEqual(['softy-pinko-postgres_internal']);
    const bindings = await stack.inspect<Record<string, unknown> | null>(db!, '.HostConfig.PortBindings');
    expect(bindings ?? {}).toEqual({});
    const mounts = await stack.inspect<{ Type: string; Name?: string; Destination: string }[]>(db!, '.Mounts');
    expect(mounts).toContainEqual(
      expect.objectContaining({
        Type: 'volume',
        Name: 'softy-pinko-postgres_contact-db',
        Destination: '/var/lib/postgresql/data',
      }),
    );
    const env = await stack.inspect<string[]>(db!, '.Config.Env');
    expect(env).toContain('POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password');
    expect(env.some((entry) => entry.startsWith('POSTGRES_PASSWORD='))).toBe(false);
    expect(await sql('SELECT name FROM pgmigrations ORDER BY id')).toEqual(['001_contact_messages']);
  });

  it('ran the migrations as a one-shot step before the back-end; running it again has nothing to do', async () => {
    const [migrate] = await stack.containers('migrate');
    expect(await stack.inspect<{ Status: string; ExitCode: number }>(migrate!, '.State')).toMatchObject({
      Status: 'exited',
      ExitCode: 0,
    });
    const logs = await run('docker', ['logs', migrate!]);
    expect(logs.stdout).toContain('migrate: applied 001_contact_messages.sql');
    const again = await stack.exec(['run', '--rm', '--no-deps', '-T', 'migrate'], 60_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/is at schema version 1, nothing to do/);
  });

  it('stores a message in PostgreSQL, answers a repeated key with the same 201 body, refuses a bad key', async () => {
    const key = randomUUID();
    const first = await post(aMessage('repeat'), { 'idempotency-key': key });
    expect(first.status).toBe(201);
    const body = await first.text();
    const again = await post(aMessage('repeat, changed'), { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(await again.text()).toBe(body);
    expect((await storedIds([key])).get(key)).toEqual([(JSON.parse(body) as { id: string }).id]);

    const bad = await post(aMessage('bad key'), { 'idempotency-key': 'not a key, has spaces' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/json/);
    const none = await post(aMessage('no key'));
    expect(none.status).toBe(201);
  });

  it('reports the database in readiness, not in liveness', async () => {
    expect((await fetch(`${stack.baseUrl}/api/health/ready`)).status).toBe(200);
    expect((await fetch(`${stack.baseUrl}/api/health`)).status).toBe(200);
  });

  it('stores every acknowledged message exactly once while a replica is killed under load', async () => {
    const victims = await stack.containers('back-end');
    const result = await postLoad('kill -9 1 of 3 back-ends', async () => {
      expect((await run('docker', ['kill', '--signal', 'KILL', victims[0]!])).code).toBe(0);
    });
    expect(result.statuses['500'] ?? 0).toBe(0);
    const acknowledged = [...result.acknowledged.entries()];
    expect(acknowledged.length).toBeGreaterThan(RATE * 5);
    const stored = await storedIds(acknowledged.map(([key]) => key));
    for (const [key, id] of acknowledged) expect(stored.get(key), `key ${key}`).toEqual([id]);

    // The requests that got no 201 (cut off with the replica) are sent again with their key, as the page
    // does: each then has exactly one row, whether the first attempt was committed or not.
    const unanswered = [...result.requests.values()].filter(({ key }) => !result.acknowledged.has(key));
    console.log(`[scenario] ${unanswered.length} request(s) without a 201, sent again with the same key`);
    for (const { key } of unanswered) {
      const retry = await post(aMessage('retry'), { 'idempotency-key': key });
      expect(retry.status).toBe(201);
    }
    const all = [...result.requests.values()].map(({ key }) => key);
    const everything = await storedIds(all);
    for (const key of all) expect(everything.get(key), `key ${key}`).toHaveLength(1);

    await run('docker', ['start', victims[0]!]);
    await stack.waitHealthy();
  });

  it('answers only 201s and JSON 503s while db is stopped, and recovers within 10 s of its start', async () => {
    let recoveredMs = Number.NaN;
    const result = await postLoad('db stopped for about 10 s', async (load) => {
      expect((await stack.exec(['stop', 'db'], 60_000)).code).toBe(0);
      const stoppedAt = load.requests.size;
      await sleep(3_000);
      // Readiness says so, a balancer's checks once a second; they mark no replica failed in the proxy, and
      // everything that does not store a message is unaffected.
      for (let check = 0; check < 3; check += 1) {
        expect((await fetch(`${stack.baseUrl}/api/health/ready`)).status).toBe(503);
        await sleep(1000);
      }
      expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/api/health`)).status).toBe(200);
      const startedAt = Date.now();
      expect((await stack.exec(['start', 'db'], 60_000)).code).toBe(0);
      // Recovered: a request sent after the start was acknowledged.
      while (Date.now() - startedAt < 20_000) {
        const later = [...load.requests.entries()].filter(
          ([index, { startedAt: at }]) => index > stoppedAt && at > startedAt,
        );
        const firstOk = later.find(([, { key }]) => load.acknowledged.has(key));
        if (firstOk) {
          recoveredMs = firstOk[1].startedAt - startedAt;
          break;
        }
        await sleep(100);
      }
    });
    console.log(`[scenario] recovered ${recoveredMs} ms after db started; slowest 503: ${result.slowest503Ms} ms`);
    expect(result.failures).toBe(0);
    expect(Object.keys(result.statuses).sort()).toEqual(['201', '503']);
    expect(result.odd).toEqual([]);
    expect(result.slowest503Ms).toBeLessThan(2_500);
    expect(recoveredMs).toBeLessThanOrEqual(10_000);
    expect((await fetch(`${stack.baseUrl}/api/health/ready`)).status).toBe(200);
  });

  it.skipIf(browserSkipReason() !== '')(
    'in Chromium, the page retries a dropped first attempt with the same key, and one row is stored',
    async () => {
      const browser = await launchBrowser();
      try {
        const page = await browser.context.newPage();
        const keys: string[] = [];
        // The first attempt reaches the API and is stored, but its answer is lost on the way back.
        await page.route('**/api/contact', async (route) => {
          keys.push(route.request().headers()['idempotency-key'] ?? '');
          if (keys.length === 1) {
            await route.fetch();
            await route.abort('connectionreset');
          } else {
            await route.continue();
          }
        });
        await page.goto(`${stack.baseUrl}/#contact`);
        const sender = `Chromium retry ${Date.now()}`;
        await sendContactForm(page, sender, 'Sent once, answered once.');
        await page.locator('.form-status[data-state="sent"]').waitFor({ timeout: 15_000 });

        expect(keys).toHaveLength(2);
        expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
        expect(keys[1]).toBe(keys[0]);
        expect(await sql(`SELECT idempotency_key FROM contact_messages WHERE name = '${sender}'`)).toEqual([keys[0]]);
      } finally {
        await browser.close();
      }
    },
  );

  it("lists the stored messages with the operators' command", async () => {
    const [backEnd] = await stack.containers('back-end');
    const listed = await run('docker', ['exec', backEnd!, 'node', 'dist/cli/messages.js', 'list']);
    expect(listed.code).toBe(0);
    const count = Number((await sql('SELECT count(*) FROM contact_messages'))[0]);
    expect(listed.stdout.trim().split('\n')).toHaveLength(count);
    expect(listed.stderr).toContain(`${count} message(s) in the postgres store`);
  });

  it('npm run deploy applies a new migration before the new back-end starts; the old one serves, 0 failed', async () => {
    await stack.waitHealthy();
    backEndBuilt = await backEnd();
    expect((await run('docker', ['tag', backEndBuilt!, BACK_END_BASE])).code).toBe(0);
    const shipped = shippedMigrations();
    const versions = shipped.map((name) => Number(name.split('_')[0]));
    expect(await schemaVersions()).toEqual(versions);
    // The next release's expand change: a nullable column the running back-end never names.
    const version = Math.max(...versions) + 1;
    const migration = `${String(version).padStart(3, '0')}_contact_messages_deploy_source.sql`;
    shippedByDeploy = { [migration]: 'ALTER TABLE contact_messages ADD COLUMN deploy_source text;' };
    const next = nextBackEnd('back-end-next', shippedByDeploy);
    const old = await stack.containers('back-end');
    expect(old).toHaveLength(3);
    let result!: RunResult;
    let deployStartedAt = 0;
    const acknowledged = await visitorsDuring('deploy a back-end with a new migration', async () => {
      deployStartedAt = Date.now();
      result = await deploy([next]);
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('deploy: back-end: applying migrations');
    expect(result.stdout).toContain(`migrate: applied ${migration}`);
    expect(result.stdout).toMatch(/back-end: 3 new healthy, routing, draining 3 old/);
    expect(result.stdout).toMatch(/front-end: unchanged/);
    expect(result.stdout).toMatch(/proxy: unchanged/);
    expect(await schemaVersions()).toEqual([...versions, version]);
    const column = "SELECT count(*) FROM information_schema.columns WHERE column_name = 'deploy_source'";
    expect(await sql(column)).toEqual(['1']);

    // The database's record of the migration against the engine's of the new back-ends: it came first, and none
    // of them exited and restarted (as one that found the schema too old would have).
    const [appliedAt] = (
      await sql(
        // node-pg-migrate's run_on is a timestamp without a zone, in the server's.
        `SELECT (extract(epoch FROM run_on AT TIME ZONE current_setting('TimeZone')) * 1000)::bigint ` +
          `FROM pgmigrations WHERE name = '${migration.replace(/\.sql$/, '')}'`,
      )
    ).map(Number);
    const fresh = await stack.containers('back-end');
    expect(fresh).toHaveLength(3);
    expect(fresh.filter((id) => old.includes(id))).toEqual([]);
    const nextImage = await backEnd();
    expect(nextImage).not.toBe(backEndBuilt);
    const created: number[] = [];
    for (const id of fresh) {
      expect(await stack.inspect<string>(id, '.Image')).toBe(nextImage);
      expect(await stack.inspect<number>(id, '.RestartCount')).toBe(0);
      created.push(Date.parse(await stack.inspect<string>(id, '.Created')));
    }
    const firstCreated = Math.min(...created);
    console.log(
      `[scenario] ${migration} applied ${appliedAt! - deployStartedAt} ms into the deploy, ` +
        `${firstCreated - appliedAt!} ms before the first new back-end was created`,
    );
    expect(appliedAt).toBeGreaterThan(deployStartedAt);
    expect(appliedAt).toBeLessThan(firstCreated);

    // The new back-ends serve, and store on the new schema.
    const replicas = new Set(
      await Promise.all(fresh.map(async (id) => replicaId(await stack.inspect<string>(id, '.Config.Hostname')))),
    );
    for (let i = 0; i < 10; i += 1) {
      const res = await fetch(`${stack.baseUrl}/api/hello`);
      expect(res.status).toBe(200);
      expect(replicas).toContain(res.headers.get('x-served-by'));
    }
    const key = randomUUID();
    const after = await post(aMessage('after the migration'), { 'idempotency-key': key });
    expect(after.status).toBe(201);
    acknowledged.set(key, ((await after.json()) as { id: string }).id);
    await expectStoredOnce(acknowledged);
  }, 240_000);

  it('npm run deploy stops at a migration that fails: exit 1, nothing changed, the old back-end serves', async () => {
    expect(shippedByDeploy, 'the scenario above shipped a migration').toBeDefined();
    const versions = await schemaVersions();
    const broken = `${String(Math.max(...versions) + 1).padStart(3, '0')}_broken.sql`;
    // The release after: the migration shipped above, and one that cannot apply.
    const next = nextBackEnd('back-end-broken', {
      ...shippedByDeploy,
      [broken]: 'ALTER TABLE no_such_table ADD COLUMN x text;',
    });
    const before = (await stack.containers('back-end')).sort();
    const imageBefore = await backEnd();
    let result!: RunResult;
    const acknowledged = await visitorsDuring('deploy a back-end whose migration fails', async () => {
      result = await deploy([next]);
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`migration ${broken} failed: relation "no_such_table" does not exist`);
    expect(result.stderr).toContain(
      'deploy: back-end: the migrations failed (see above); the old version keeps serving',
    );
    expect(result.stdout).not.toMatch(/back-end: \d+ new starting/);
    expect((await stack.containers('back-end')).sort()).toEqual(before);
    expect(await backEnd(), 'the release that runs is still the one before').toBe(imageBefore);
    expect(await schemaVersions()).toEqual(versions);
    expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
    await expectStoredOnce(acknowledged);
  });
});
