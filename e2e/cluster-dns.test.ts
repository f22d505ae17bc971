/**
 * Kubernetes' DNS, emulated with Compose: the front-end and back-end answer to their cluster names
 * (`back-end.<namespace>.svc.cluster.local`, network aliases), the proxy gets a Kubernetes-style
 * resolv.conf (search domains, ndots:5) and the upstream env vars of the rendered production overlay.
 * The scaling suite's assertions must hold through it: an even spread, kill -9 under load, a new replica seen.
 * It needs kubectl to render the manifests: without it this skips loudly; under CI=true it fails instead.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { findKubectl, render, type K8sObject } from '../deploy/manifests.js';
import { freePort, run } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';
import { describeLoad, serverErrors, startLoad } from './load.js';

const kubectl = await findKubectl();
const noKubectl = kubectl ? '' : 'kubectl (with kustomize) is not installed';
if (noKubectl && process.env.CI === 'true')
  throw new Error(`Cluster DNS cannot be emulated under CI=true: ${noKubectl}`);
if (noKubectl) console.warn(`\n!! SKIPPING the cluster DNS emulation: ${noKubectl}\n`);
const skip = inject('stackSkipReason') !== '' || noKubectl !== '';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(skip).sequential('the stack behind Kubernetes-style DNS names (emulated with Compose)', () => {
  let stack: TestStack;
  let hello: string;
  let namespace: string;

  /** Asks until `count` distinct replicas have answered within `timeoutMs`; returns how many answered each. */
  async function replicasAnswering(count: number, timeoutMs = 15_000): Promise<Record<string, number>> {
    const deadline = Date.now() + timeoutMs;
    let seen: Record<string, number> = {};
    while (Date.now() < deadline) {
      seen = {};
      for (let batch = 0; batch < count * 10; batch += 1) {
        const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(hello)));
        for (const res of answers) {
          expect(res.status).toBe(200);
          const replica = res.headers.get('x-served-by') ?? '?';
          seen[replica] = (seen[replica] ?? 0) + 1;
        }
      }
      if (Object.keys(seen).length === count) return seen;
      await sleep(500);
    }
    throw new Error(`expected ${count} replicas within ${timeoutMs} ms, saw ${JSON.stringify(seen)}`);
  }

  beforeAll(async () => {
    const objects = await render(kubectl!, 'overlays/production');
    namespace = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
    const proxy = objects.find((o: K8sObject) => o.kind === 'Deployment' && o.metadata.name === 'proxy')!;
    const all = proxy.spec.template.spec.containers[0].env as { name: string; value?: string }[];
    // $(CLUSTER_DOMAIN) and the like are expanded as the kubelet does, from the variables listed before.
    const expand = (value: string) =>
      value.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => all.find((e) => e.name === name)?.value ?? '');
    const env = Object.fromEntries(all.filter((e) => e.name.endsWith('_HOST')).map((e) => [e.name, expand(e.value!)]));
    expect(Object.keys(env).sort()).toEqual(['BACK_END_HOST', 'FRONT_END_HOST']);

    const dir = mkdtempSync(`${tmpdir()}/cluster-dns-`);
    // What the kubelet writes into a pod: the cluster's search domains and ndots:5. The nameserver is Docker's
    // (it stands in for the cluster DNS Service); the proxy must take it from here.
    writeFileSync(
      `${dir}/resolv.conf`,
      `search ${namespace}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.11\noptions ndots:5\n`,
    );
    const alias = (service: string) => ({ internal: { aliases: [`${service}.${namespace}.svc.cluster.local`] } });
    writeFileSync(
      `${dir}/docker-compose.cluster-dns.yml`,
      stringify({
        services: {
          'front-end': { networks: alias('front-end') },
          'back-end': { networks: alias('back-end') },
          proxy: { environment: env, volumes: [`${dir}/resolv.conf:/etc/resolv.conf:ro`] },
        },
      }),
    );
    // All load comes from one client address, so the per-client API rate limit is lifted, as in scaling.test.ts.
    stack = new TestStack(
      'softy-pinko-cluster-dns',
      await freePort(),
      { API_RATE_LIMIT: '100000r/s', API_RATE_BURST: '100000' },
      { files: [`${dir}/docker-compose.cluster-dns.yml`] },
    );
    hello = `${stack.baseUrl}/api/hello`;
    await stack.down();
    await stack.up();
  });

  afterAll(async () => {
    if (stack) await stack.down();
  });

  it("the proxy runs with the manifests' fully qualified upstream names and the pod-style resolv.conf", async () => {
    const [proxy] = await stack.containers('proxy');
    const { stdout } = await run('docker', ['exec', proxy!, 'sh', '-c', 'echo "$BACK_END_HOST"; cat /etc/resolv.conf']);
    expect(stdout).toContain(`back-end.${namespace}.svc.cluster.local`);
    expect(stdout).toContain('options ndots:5');
    expect((await fetch(`${stack.baseUrl}/`)).status).toBe(200);
  });

  it('spreads requests evenly over 3 replicas', async () => {
    await stack.scaleBackEnd(3);
    await stack.waitHealthy();
    const counts = await replicasAnswering(3);
    console.log(
      `[cluster-dns] spread over ${Object.values(counts).reduce((a, b) => a + b)}: ${JSON.stringify(counts)}`,
    );
    const share = Object.values(counts).reduce((a, b) => a + b) / 3;
    for (const count of Object.values(counts)) {
      expect(count).toBeGreaterThanOrEqual(share * 0.8);
      expect(count).toBeLessThanOrEqual(share * 1.2);
    }
  });

  it('docker kill -s KILL of one of 3 replicas under load: no failed request', async () => {
    const [victim] = (await stack.containers('back-end')).sort();
    const load = startLoad(hello, { ratePerSecond: 200, maxDurationMs: 60_000 });
    await sleep(5000);
    expect((await run('docker', ['kill', '--signal', 'KILL', victim!])).code).toBe(0);
    await sleep(10_000);
    const result = await load.stop();
    console.log(describeLoad('[cluster-dns] kill -9 1 of 3', result));
    expect(result.failures).toBe(0);
    expect(serverErrors(result)).toBe(0);
    expect(result.statuses['200']).toBe(result.sent);
    await run('docker', ['start', victim!]);
    await stack.waitHealthy();
  });

  it('a new replica gets traffic through its cluster name within 15 s', async () => {
    await replicasAnswering(3);
    await stack.scaleBackEnd(4);
    await stack.waitHealthy();
    const started = Date.now();
    await replicasAnswering(4);
    console.log(`[cluster-dns] the 4th replica answered ${Date.now() - started} ms after it was healthy`);
  });
});
