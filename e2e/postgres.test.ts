/**
 * Contact messages in PostgreSQL (docker-compose.postgres.yml) with the back-end scaled to 3, under POST load:
 * every acknowledged message is stored exactly once while a replica is killed, the API answers only 201s and
 * JSON 503s while the database is stopped and recovers by itself, and the page's own retry stores one row.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { browserSkipReason, launchBrowser, sendContactForm } from './browser.js';
import { describeLoad, startLoad, type LoadResult } from './load.js';
import {
  REPO_ROOT,
  Stack,
  databaseSecretsEnv,
  dotEnv,
  freePort,
  imageExists,
  run,
  runLoud,
} from '../scripts/lib/stack.js';

const skipReason = inject('stackSkipReason');
const RATE = 100; // POSTs per second, spread over 3 replicas
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** postgres:17, or the look-alike images:offline builds when no registry answers (it writes POSTGRES_IMAGE). */
async function ensurePostgresImage(): Promise<void> {
  const image = dotEnv().POSTGRES_IMAGE ?? 'postgres:17';
  if (await imageExists(image)) return;
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
  let stack: Stack;
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
    // One query for all: the keys are UUIDs we made, so they are safe inside a literal.
    const rows = await sql(
      `SELECT idempotency_key || ' ' || id FROM contact_messages WHERE idempotency_key IN ('${keys.join("','")}')`,
    );
    for (const row of rows) {
      const [key, id] = row.split(' ') as [string, string];
      found.set(key, [...(found.get(key) ?? []), id]);
    }
    return found;
  }

  beforeAll(async () => {
    await ensurePostgresImage();
    // All load comes from one client address, so the per-client API rate limit is lifted here.
    stack = new Stack(
      inject('compose'),
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
    expect(await sql('SELECT version FROM schema_migrations ORDER BY version')).toEqual(['1']);
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
    const result = await postLoad('db stopped for 8 s', async (load) => {
      expect((await stack.exec(['stop', 'db'], 60_000)).code).toBe(0);
      const stoppedAt = load.requests.size;
      await sleep(3_000);
      // Meanwhile everything that does not store a message is unaffected.
      expect((await fetch(`${stack.baseUrl}/api/hello`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/api/health`)).status).toBe(200);
      expect((await fetch(`${stack.baseUrl}/api/health/ready`)).status).toBe(503);
      await sleep(5_000);
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
});
