/**
 * deploy/swarm/docker-stack.yml deployed for real, on a single-node swarm of this machine's Docker engine:
 * the images from a registry on loopback, the node labelled as the stack file's placement asks, the page and
 * the API through the proxy, the back-end scaled 1 → 3 with an even spread, a rolling update
 * of the back-end under a steady load with no failed request, and `docker stack rm` leaving nothing.
 * A swarm this suite starts is left again afterwards; one that was already active is used and kept.
 * Every request stays on loopback (`--advertise-addr 127.0.0.1`, the proxy's port in host mode).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT, databaseSecretsEnv, freePort, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { describeLoad, serverErrors, startLoad, waitFor } from './load.js';

const skipReason = inject('stackSkipReason');
const NAME = `softy-pinko-e2e-${process.pid}`;
const STACK_FILE = `${REPO_ROOT}deploy/swarm/docker-stack.yml`;
const SECRETS = ['softy-pinko-postgres-password', 'softy-pinko-database-url'];
const RATE = 100; // requests per second during the rolling update, as in the manual trial
const LABELS = ['softy-pinko.db=true', 'softy-pinko.edge=true', 'softy-pinko.zone=single'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function docker(args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = options.input === undefined ? await run('docker', args, options) : await pipeInto(args, options.input);
  if (result.code !== 0) throw new Error(`docker ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** `docker secret create NAME -` reads the value from stdin, so it never appears in a process list. */
async function pipeInto(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve) => {
    const child = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/**
 * Debian's docker-registry on a free loopback port, its storage in a temporary directory (removed by stop()).
 * Docker pushes to and pulls from a registry on 127.0.0.0/8 over plain HTTP without being told to.
 */
async function startRegistry(): Promise<{ address: string; stop: () => void }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'softy-pinko-registry-'));
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const { spawn } = await import('node:child_process');
  const server = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  await waitFor('the registry', async () => ((await fetch(`http://${address}/v2/`)).ok ? true : undefined), 30_000);
  return {
    address,
    stop: () => {
      server.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What the stack still owns: services, containers and networks carrying its namespace label. */
async function leftovers(): Promise<string[]> {
  const label = `label=com.docker.stack.namespace=${NAME}`;
  const [services, containers, networks] = await Promise.all([
    docker(['service', 'ls', '--quiet', '--filter', label]),
    docker(['ps', '--all', '--quiet', '--filter', label]),
    docker(['network', 'ls', '--quiet', '--filter', label]),
  ]);
  return [
    ...services.split('\n').map((id) => id && `service ${id}`),
    ...containers.split('\n').map((id) => id && `container ${id}`),
    ...networks.split('\n').map((id) => id && `network ${id}`),
  ].filter(Boolean);
}

describe.skipIf(skipReason !== '').sequential('the Swarm stack, deployed on a single-node swarm', () => {
  let startedSwarm = false;
  let nodeId = '';
  let registry: { address: string; stop: () => void } | undefined;
  let base: string;
  const env: NodeJS.ProcessEnv = {};

  /** Replicas of the back-end that answer `count` × 20 requests to /api/hello, by X-Served-By. */
  async function spread(count: number): Promise<Record<string, number>> {
    const tally: Record<string, number> = {};
    for (let i = 0; i < count * 20; i += 1) {
      const response = await fetch(`${base}/api/hello`);
      expect(response.status).toBe(200);
      const replica = response.headers.get('x-served-by') ?? '?';
      tally[replica] = (tally[replica] ?? 0) + 1;
    }
    return tally;
  }

  async function runningTasks(service: string): Promise<number> {
    const states = await docker([
      'service',
      'ps',
      '--format',
      '{{.CurrentState}}',
      '--filter',
      'desired-state=running',
      `${NAME}_${service}`,
    ]);
    return states.split('\n').filter((state) => state.startsWith('Running')).length;
  }

  /**
   * The swarm's docker_gwbridge, made beforehand on a range no Compose network takes, as Docker documents for
   * a custom one. Left to itself it takes the next free 172.x range, and once the swarm is left and that bridge
   * goes, its NAT rule stays behind and breaks the next Compose network given that range.
   */
  async function ownGatewayBridge(): Promise<void> {
    if ((await run('docker', ['network', 'inspect', 'docker_gwbridge'])).code === 0) return;
    await docker(
      ['network', 'create', '--subnet', '10.211.0.0/16', '--gateway', '10.211.0.1'].concat(
        ['--opt', 'com.docker.network.bridge.name=docker_gwbridge'],
        ['--opt', 'com.docker.network.bridge.enable_icc=false'],
        ['--opt', 'com.docker.network.bridge.enable_ip_masquerade=true'],
        ['docker_gwbridge'],
      ),
    );
  }

  beforeAll(async () => {
    const state = await docker(['info', '--format', '{{.Swarm.LocalNodeState}}']);
    if (state === 'inactive') {
      await ownGatewayBridge();
      await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
      startedSwarm = true;
    } else if (state !== 'active') {
      throw new Error(`this Docker engine's swarm is ${state}; expected inactive or active`);
    }
    // The images `docker compose build` makes, under the stack suite's tag (layers are shared with it),
    // pushed to a registry on loopback: the stack file takes its images from a registry, as every node must.
    const port = await freePort();
    registry = await startRegistry();
    Object.assign(env, {
      TAG: 'e2e',
      REGISTRY: registry.address,
      PROXY_PORT: String(port),
      API_RATE_LIMIT: '100000r/s',
      API_RATE_BURST: '100000',
    });
    // The database's image too: the PostgreSQL override builds it (FROM POSTGRES_IMAGE, from .env offline).
    await new TestStack(NAME, port, await databaseSecretsEnv(), {
      files: [`${REPO_ROOT}docker-compose.postgres.yml`],
    }).execLoud(['build']);
    for (const image of ['front-end', 'back-end', 'proxy', 'db']) {
      const pushed = `${registry.address}/softy-pinko-${image}:e2e`;
      await docker(['tag', `softy-pinko-${image}:e2e`, pushed]);
      await docker(['push', '--quiet', pushed], { timeoutMs: 600_000 });
      await docker(['rmi', pushed]);
    }
    // The placement labels the stack file reads: this one node holds the database and faces visitors.
    nodeId = await docker(['info', '--format', '{{.Swarm.NodeID}}']);
    await docker(['node', 'update', ...LABELS.flatMap((label) => ['--label-add', label]), nodeId]);
    // Left over from an aborted run: the names are the stack file's, so they must be free.
    for (const secret of SECRETS) await run('docker', ['secret', 'rm', secret]);
    const password = randomBytes(18).toString('hex');
    await docker(['secret', 'create', SECRETS[0]!, '-'], { input: password });
    await docker(['secret', 'create', SECRETS[1]!, '-'], {
      input: `postgresql://softy:${password}@db:5432/softy_pinko`,
    });
    const deployed = await run(
      'docker',
      ['stack', 'deploy', '--with-registry-auth', '--detach=true', '-c', STACK_FILE, NAME],
      {
        env,
        timeoutMs: 120_000,
      },
    );
    if (deployed.code !== 0) throw new Error(`docker stack deploy: ${deployed.stderr}`);
    base = `http://127.0.0.1:${port}`;
  }, 1_800_000);

  afterAll(async () => {
    await run('docker', ['stack', 'rm', NAME]);
    await waitFor(
      'the stack to be gone',
      async () => ((await leftovers()).length === 0 ? true : undefined),
      120_000,
    ).catch((error: unknown) => console.error(String(error)));
    // Data volumes outlive `stack rm` by design; this one was only ever test data.
    await run('docker', ['volume', 'rm', `${NAME}_db-data`]);
    for (const secret of SECRETS) await run('docker', ['secret', 'rm', secret]);
    if (nodeId && !startedSwarm) {
      await run('docker', [
        'node',
        'update',
        ...LABELS.flatMap((label) => ['--label-rm', label.split('=')[0]!]),
        nodeId,
      ]);
    }
    if (startedSwarm) await run('docker', ['swarm', 'leave', '--force']);
    registry?.stop();
  }, 300_000);

  it('serves the page and the API through the proxy', async () => {
    const page = await waitFor('the page through the proxy', async () => {
      const response = await fetch(`${base}/`);
      return response.status === 200 ? response.text() : undefined;
    });
    expect(page).toContain('id="dynamic-content"');
    const hello = await waitFor('the API through the proxy', async () => {
      const response = await fetch(`${base}/api/hello`);
      return response.status === 200 ? response.text() : undefined;
    });
    expect(hello).toContain('Hello, World!');
  }, 300_000);

  it('ran the migrations as a job of the stack, so the back-end stores a message in PostgreSQL', async () => {
    // The job may still be retrying while PostgreSQL starts; the page can be up before it completes.
    const states = await waitFor(
      'the migrate job to complete',
      async () => {
        const lines = (await docker(['service', 'ps', '--format', '{{.CurrentState}}', `${NAME}_migrate`])).split('\n');
        return lines.some((line) => line.startsWith('Complete')) ? lines : undefined;
      },
      120_000,
    );
    expect(states).toContainEqual(expect.stringMatching(/^Complete/));
    const response = await fetch(`${base}/api/contact`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Swarm', email: 'swarm@example.com', message: 'Stored in PostgreSQL.' }),
    });
    expect(response.status).toBe(201);
  }, 180_000);

  it('scales the back-end from 1 to 3 replicas, with an even spread', async () => {
    await docker(['service', 'scale', '--detach', `${NAME}_back-end=1`]);
    await waitFor('one back-end', async () => (Object.keys(await spread(1)).length === 1 ? true : undefined), 120_000);
    await docker(['service', 'scale', '--detach', `${NAME}_back-end=3`]);
    await waitFor(
      'three running back-ends',
      async () => ((await runningTasks('back-end')) === 3 ? true : undefined),
      120_000,
    );
    await waitFor('three back-ends answering', async () =>
      Object.keys(await spread(3)).length === 3 ? true : undefined,
    );
    // Counted afresh: the batch that first saw the third replica began before the proxy's DNS knew it.
    const tally = await spread(3);
    console.log(`[swarm] spread over 3 back-ends: ${JSON.stringify(tally)}`);
    // 60 requests, round-robin: each replica within ±20 % of its share of 20.
    for (const count of Object.values(tally)) {
      expect(count).toBeGreaterThanOrEqual(16);
      expect(count).toBeLessThanOrEqual(24);
    }
  }, 300_000);

  it('rolls the back-end over under load without a single failed request', async () => {
    const load = startLoad(`${base}/api/hello`, { ratePerSecond: RATE, maxDurationMs: 300_000 });
    await sleep(5000);
    const updated = await run('docker', ['service', 'update', '--force', '--detach=false', `${NAME}_back-end`], {
      timeoutMs: 240_000,
    });
    await sleep(5000);
    const result = await load.stop();
    console.log(describeLoad('[swarm] rolling update of 3 back-ends at 100 req/s', result));
    expect(updated.code, updated.stderr).toBe(0);
    expect(Object.keys(result.servedBy).length, 'old and new tasks answered').toBeGreaterThan(3);
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses).toEqual({ 200: result.sent });
  }, 300_000);

  it('`docker stack rm` leaves no service, container or network behind', async () => {
    await docker(['stack', 'rm', NAME]);
    const left = await waitFor(
      'the stack to be gone',
      async () => {
        const found = await leftovers();
        return found.length === 0 ? found : undefined;
      },
      120_000,
    );
    expect(left).toEqual([]);
  }, 180_000);
});
