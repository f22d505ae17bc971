/**
 * The back-end scaled out behind the proxy: requests spread evenly, the proxy follows replicas that
 * come and go without a restart, and a steady load sees no failure while replicas stop, crash,
 * restart or scale down. Every load is bounded in rate, count and time and stays on loopback.
 */
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, replicaId, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { describeLoad, printServerErrorLogs, serverErrors, startLoad, type LoadResult } from './load.js';

const skipReason = inject('stackSkipReason');
const RATE = 200; // requests per second
const LOAD_MS = 30_000; // each scenario's steady load: 200 req/s for 30 s
const LOAD_CEILING_MS = 90_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(skipReason !== '').sequential('the back-end scaled out', () => {
  let stack: TestStack;
  let hello: string;

  /** Asks until `count` distinct replicas have answered; returns how long that took. */
  async function waitForReplicas(count: number, timeoutMs = 10_000): Promise<number> {
    const started = Date.now();
    let seen = new Set<string>();
    while (Date.now() - started < timeoutMs) {
      seen = new Set<string>();
      for (let i = 0; i < count * 6; i += 1) {
        const res = await fetch(hello);
        expect(res.status, 'no error while the replica set changes').toBe(200);
        seen.add(res.headers.get('x-served-by') ?? '');
      }
      if (seen.size === count) return Date.now() - started;
      await sleep(200);
    }
    throw new Error(`expected ${count} replicas answering within ${timeoutMs} ms, saw ${[...seen].join(', ')}`);
  }

  /**
   * Runs `operation` 5 s into a steady load that lasts at least LOAD_MS (and 5 s past the operation),
   * and returns the tally.
   */
  async function underLoad(scenario: string, operation: () => Promise<void>): Promise<LoadResult> {
    const started = Date.now();
    const load = startLoad(hello, { ratePerSecond: RATE, maxDurationMs: LOAD_CEILING_MS });
    await sleep(5000);
    await operation();
    await sleep(Math.max(5000, LOAD_MS - (Date.now() - started)));
    const result = await load.stop();
    console.log(describeLoad(scenario, result));
    if (serverErrors(result) > 0) {
      await printServerErrorLogs(stack, `${Math.ceil((Date.now() - started) / 1000) + 5}s`);
    }
    return result;
  }

  async function backEnds(): Promise<string[]> {
    const ids = await stack.containers('back-end');
    return ids.sort();
  }

  beforeAll(async () => {
    // All load comes from one client address, so the per-client API rate limit is lifted here
    // (it has its own test in stack.test.ts).
    stack = new TestStack('softy-pinko-scale', await freePort(), {
      API_RATE_LIMIT: '100000r/s',
      API_RATE_BURST: '100000',
    });
    hello = `${stack.baseUrl}/api/hello`;
    await stack.down();
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  it('scales 1 → 3 with no file edited, and the proxy sends traffic to the new replicas within 10 s', async () => {
    await stack.scaleBackEnd(3);
    await stack.waitHealthy();
    expect(await backEnds()).toHaveLength(3);
    const tookMs = await waitForReplicas(3);
    console.log(`[scenario] scale 1 → 3: all 3 replicas answering ${tookMs} ms after they were healthy`);
  });

  it('spreads 600 requests evenly: each of 3 replicas within ±20% of its share', async () => {
    const counts: Record<string, number> = {};
    for (let batch = 0; batch < 60; batch += 1) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => fetch(hello)));
      for (const res of answers) {
        expect(res.status).toBe(200);
        const replica = res.headers.get('x-served-by') ?? 'unknown';
        counts[replica] = (counts[replica] ?? 0) + 1;
      }
    }
    console.log(`[scenario] balance over 600 requests: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts)).toHaveLength(3);
    for (const count of Object.values(counts)) {
      expect(count).toBeGreaterThanOrEqual(160);
      expect(count).toBeLessThanOrEqual(240);
    }
  });

  it('(a) docker stop of one of 3 replicas under load: no failed request', async () => {
    const [victim] = await backEnds();
    const result = await underLoad('(a) docker stop 1 of 3', async () => {
      expect((await run('docker', ['stop', victim!])).code).toBe(0);
    });
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses['200']).toBe(result.sent);
    await run('docker', ['start', victim!]);
    await stack.waitHealthy();
    await waitForReplicas(3);
  });

  it('(b) docker kill -s KILL of one of 3 replicas under load: no failed request', async () => {
    const [victim] = await backEnds();
    const result = await underLoad('(b) kill -9 1 of 3', async () => {
      expect((await run('docker', ['kill', '--signal', 'KILL', victim!])).code).toBe(0);
    });
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses['200']).toBe(result.sent);
    expect(await stack.inspect(victim!, '.State.ExitCode')).toBe(137);
    // Docker counts `docker kill` as a manual stop, so the restart policy leaves it down: start it again.
    await run('docker', ['start', victim!]);
    await stack.waitHealthy();
    await waitForReplicas(3);
  });

  it('(c) a rolling restart of all 3 replicas under load: no failed request', async () => {
    const replicas = await backEnds();
    const result = await underLoad('(c) rolling restart of 3', async () => {
      for (const replica of replicas) {
        expect((await run('docker', ['restart', '--time', '10', replica])).code).toBe(0);
        await stack.waitHealthy();
      }
    });
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses['200']).toBe(result.sent);
    await waitForReplicas(3);
  });

  it('loses no acknowledged contact message, and stores none twice, while a replica is killed', async () => {
    const run_ = `kill-${Date.now()}`;
    const acknowledged = new Map<string, string>(); // message text → id the API answered with
    const load = startLoad(`${stack.baseUrl}/api/contact`, {
      ratePerSecond: 100,
      maxDurationMs: 20_000,
      init: (index) => ({
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `Load ${index}`, email: 'load@example.com', message: `${run_} #${index}` }),
      }),
      onResponse: (index, response, body) => {
        if (response.status === 201) acknowledged.set(`${run_} #${index}`, (JSON.parse(body) as { id: string }).id);
      },
    });
    await sleep(5000);
    const [victim] = await backEnds();
    expect((await run('docker', ['kill', '--signal', 'KILL', victim!])).code).toBe(0);
    await sleep(10_000);
    const result = await load.stop();
    console.log(describeLoad('POST /api/contact while kill -9 1 of 3', result) + `, acknowledged=${acknowledged.size}`);

    const survivor = (await backEnds()).find((id) => id !== victim)!;
    const { stdout } = await run('docker', ['exec', survivor, 'cat', '/data/contact-messages.jsonl']);
    const stored = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { id: string; message: string })
      .filter((message) => message.message.startsWith(`${run_} #`));
    const timesStored = new Map<string, number>();
    for (const message of stored) timesStored.set(message.message, (timesStored.get(message.message) ?? 0) + 1);

    expect(acknowledged.size).toBeGreaterThan(result.sent * 0.5);
    for (const [text, id] of acknowledged) {
      expect(stored.find((message) => message.message === text)?.id, text).toBe(id);
    }
    expect([...timesStored.values()].filter((count) => count > 1)).toEqual([]);
    await run('docker', ['start', victim!]);
    await stack.waitHealthy();
    await waitForReplicas(3);
  });

  it('(d) scaling 3 → 1 under load: no failed request, and only the survivor answers afterwards', async () => {
    const result = await underLoad('(d) scale 3 → 1', async () => {
      await stack.scaleBackEnd(1);
    });
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses['200']).toBe(result.sent);
    expect(await backEnds()).toHaveLength(1);
    await waitForReplicas(1);
  });

  it('follows a recreated back-end with a new address within 10 s, with no 502 from a stale address', async () => {
    const [before] = await backEnds();
    const addressOf = async (id: string) =>
      Object.values(await stack.inspect<Record<string, { IPAddress: string }>>(id, '.NetworkSettings.Networks'))[0]
        ?.IPAddress ?? '';
    const oldAddress = await addressOf(before!);
    // Docker hands a freed address to the next container; a placeholder takes it, so the recreated
    // back-end must get a new one and the proxy can only reach it by resolving the name again.
    await run('docker', ['stop', before!]);
    const network = `${stack.project}_internal`;
    const image = await stack.inspect<string>(before!, '.Config.Image');
    const placeholder = await run('docker', [
      'run',
      '--detach',
      '--network',
      network,
      // Compose v2 labels the images it builds with their project and service, and a container inherits
      // them: without new labels the placeholder would count as a back-end that never gets healthy.
      '--label',
      'com.docker.compose.project=placeholder',
      '--label',
      'com.docker.compose.service=placeholder',
      '--entrypoint',
      'sleep',
      image,
      '120',
    ]);
    expect(placeholder.code, placeholder.stderr).toBe(0);
    try {
      await stack.execLoud(['up', '--detach', '--no-deps', '--force-recreate', 'back-end']);
      await stack.waitHealthy();
      const [after] = await backEnds();
      const newAddress = await addressOf(after!);
      expect(after).not.toBe(before);
      expect(newAddress).not.toBe(oldAddress);
      // Every request here must be a 200: a stale address would show up as a 503.
      const tookMs = await waitForReplicas(1);
      const result = await underLoad(
        `after recreate (${oldAddress} → ${newAddress}, followed in ${tookMs} ms)`,
        async () => {},
      );
      expect(result.failures).toBe(0);
      expect(serverErrors(result)).toBe(0);
      expect(result.servedBy).toEqual({
        [replicaId(await stack.inspect<string>(after!, '.Config.Hostname'))]: result.sent,
      });
    } finally {
      await run('docker', ['rm', '--force', placeholder.stdout.trim()]);
    }
  });

  it('gives a GET a second pass when the DNS refresh replaces the replicas while it waits on a gone one', async () => {
    // A proxy of our image whose DNS server is this test. Each answer names the live replica and an address
    // nothing answers on, a new one at each refresh. When nginx asks again (every 5 s), the GETs are sent and
    // the answer is held back 120 ms: the GETs sent to the gone address are still connecting (250 ms) when the
    // group is replaced, which leaves nginx no next replica ("no live upstreams"). That is what a drained
    // replica's address does to a request during a deploy, made certain instead of rare.
    const ipam = async (network: string) =>
      (await stack.inspect<{ Subnet: string; Gateway: string }[]>(network, '.IPAM.Config'))[0]!;
    const internal = `${stack.project}_internal`;
    const edge = `${stack.project}_edge`;
    const addressOn = async (id: string) =>
      (await stack.inspect<Record<string, { IPAddress: string }>>(id, '.NetworkSettings.Networks'))[internal]!
        .IPAddress;
    const live = {
      'back-end.retry.test': await addressOn((await backEnds())[0]!),
      'front-end.retry.test': await addressOn((await stack.containers('front-end'))[0]!),
    };
    const subnet = (await ipam(internal)).Subnet.split('.').slice(0, 3).join('.');
    let firstQueryAt = 0;
    let refreshed: Promise<number[]> | undefined;
    let held: Promise<unknown> | undefined; // from nginx's first refresh on
    const gone = (name: string) => `${subnet}.${200 + (held ? 2 : 0) + Object.keys(live).indexOf(name)}`;
    const dns = createSocket('udp4');
    dns.on('message', async (message, from) => {
      const query = dnsPacket.decode(message);
      const name = query.questions![0]!.name as keyof typeof live;
      firstQueryAt ||= Date.now();
      const refresh = Date.now() - firstQueryAt > 3000;
      if (refresh && !held) {
        refreshed = Promise.all(
          [1, 2, 3, 4, 5, 6]
            .flatMap((n) => [`/api/hello?n=${n}`, `/?n=${n}`])
            .map(async (path) => (await fetch(`http://127.0.0.1:${port}${path}`)).status),
        );
        held = sleep(120);
      }
      if (refresh) await held;
      const answers = name in live ? [gone(name), live[name]] : [];
      const reply = dnsPacket.encode({
        id: query.id,
        type: 'response',
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: query.questions,
        answers: answers.map((data) => ({ type: 'A' as const, name, ttl: 5, data })),
      });
      dns.send(reply, from.port, from.address);
    });
    // On the host's side of the proxy's network, where nothing else reaches it.
    const gateway = (await ipam(edge)).Gateway;
    await new Promise<void>((resolve) => dns.bind(0, gateway, resolve));
    const port = await freePort();
    const image = await stack.inspect<string>((await stack.containers('proxy'))[0]!, '.Config.Image');
    const created = await run('docker', [
      'create',
      '--network',
      edge,
      '--publish',
      `127.0.0.1:${port}:80`,
      '--env',
      `RESOLVER=${gateway}:${(dns.address() as AddressInfo).port}`,
      '--env',
      'BACK_END_HOST=back-end.retry.test',
      '--env',
      'FRONT_END_HOST=front-end.retry.test',
      image,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    try {
      expect((await run('docker', ['network', 'connect', internal, id])).code).toBe(0);
      expect((await run('docker', ['start', id])).code).toBe(0);
      for (let waited = 0; !refreshed; waited += 100) {
        expect(waited, 'nginx asks the DNS server again within 10 s').toBeLessThan(10_000);
        await sleep(100);
      }
      const statuses = await refreshed;
      await sleep(1500); // the access log's flush
      const { stdout, stderr } = await run('docker', ['logs', id]);
      const noLive = stderr.split('\n').filter((line) => line.includes('no live upstreams'));
      console.log(
        `[scenario] DNS refresh mid-retry: ${noLive.length} GETs found no live upstream, answers ${statuses}`,
      );
      // The race happened, for the API and for the page, and no visitor saw it.
      expect(noLive.some((line) => line.includes('GET /api/hello'))).toBe(true);
      expect(noLive.some((line) => line.includes('GET /?n='))).toBe(true);
      expect(statuses).toEqual(Array(12).fill(200));
      expect(stdout).not.toMatch(/"status":5\d\d/);
    } finally {
      await run('docker', ['rm', '--force', id]);
      dns.close();
    }
  });

  it('answers 503 JSON within 3 s while every replica is down, serves the page, and recovers', async () => {
    const replicas = await backEnds();
    await run('docker', ['stop', ...replicas]);
    for (let i = 0; i < 3; i += 1) {
      const started = Date.now();
      const res = await fetch(hello);
      const tookMs = Date.now() - started;
      expect(tookMs).toBeLessThan(3000);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
    }
    const page = await fetch(`${stack.baseUrl}/`);
    expect(page.status).toBe(200);
    await run('docker', ['start', ...replicas]);
    const started = Date.now();
    for (;;) {
      const res = await fetch(hello);
      if (res.status === 200) break;
      expect(Date.now() - started, 'the API comes back once a replica runs').toBeLessThan(30_000);
      await sleep(250);
    }
    console.log(`[scenario] all replicas down: 503 JSON; API back ${Date.now() - started} ms after docker start`);
  });
});
