/**
 * deploy/swarm/docker-stack.yml, proven without a swarm: Docker's own `docker stack config` accepts it (its
 * schema refuses unknown keys), and it keeps what docker-compose.yml promises, in the keys `stack deploy`
 * honours. The stack deployed for real is e2e/swarm.test.ts. Without a Docker CLI the first check skips
 * loudly; under CI=true it fails instead.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { proxyReadTimeoutSeconds } from './images.js';
import { deployDir, repoRoot } from './manifests.js';

const execFileAsync = promisify(execFile);
const stackFile = `${deployDir}swarm/docker-stack.yml`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML
type Any = any;
const load = (path: string): Any => parse(readFileSync(path, 'utf8'), { merge: true });
const stack = load(stackFile);
const composeFiles = ['docker-compose.yml', 'docker-compose.postgres.yml'].filter((f) => existsSync(`${repoRoot}${f}`));
const compose = Object.assign({}, ...composeFiles.map((f) => load(`${repoRoot}${f}`).services)) as Record<string, Any>;
const services = Object.entries(stack.services as Record<string, Any>);

/** A Compose duration (`35s`, `1m30s`) in seconds; Compose's default stop grace period is 10 s. */
const seconds = (duration: string | undefined): number => {
  if (duration === undefined) return 10;
  const match = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(duration);
  if (!match || duration === '') throw new Error(`not a duration: ${duration}`);
  return Number(match[1] ?? 0) * 60 + Number(match[2] ?? 0);
};

/** Compose's `256m` and the stack's `256M`, in bytes. */
const bytes = (size: string | number): number => {
  const match = /^(\d+)([kmg]?)b?$/i.exec(String(size));
  if (!match) throw new Error(`not a size: ${size}`);
  return Number(match[1]) * 1024 ** ' kmg'.indexOf((match[2] || ' ').toLowerCase());
};

async function dockerCli(): Promise<string | undefined> {
  try {
    await execFileAsync('docker', ['--version'], { timeout: 30_000 });
    return 'docker';
  } catch {
    return undefined;
  }
}

const docker = await dockerCli();
if (!docker) {
  const reason = 'no Docker CLI on PATH';
  if (process.env.CI === 'true') throw new Error(`The Swarm stack cannot be checked under CI=true: ${reason}`);
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING docker stack config: ${reason}.\n${'!'.repeat(72)}\n`);
}

describe('deploy/swarm/docker-stack.yml', () => {
  it.skipIf(!docker)("passes Docker's own schema (`docker stack config`), which refuses unknown keys", async () => {
    const env = { ...process.env, REGISTRY: 'registry.example.com:5000', TAG: '1.0.0' };
    const { stdout } = await execFileAsync(docker!, ['stack', 'config', '-c', stackFile], { timeout: 60_000, env });
    expect(Object.keys(parse(stdout).services).sort()).toEqual(Object.keys(stack.services).sort());
    // The same check refuses a misspelled key, so passing it means something.
    const misspelled = `${mkdtempSync(`${tmpdir()}/stack-`)}/docker-stack.yml`;
    writeFileSync(misspelled, readFileSync(stackFile, 'utf8').replace('endpoint_mode: dnsrr', 'endpoint_mod: dnsrr'));
    await expect(
      execFileAsync(docker!, ['stack', 'config', '-c', misspelled], { timeout: 60_000, env }),
    ).rejects.toThrow(/endpoint_mod/);
  });

  it.skipIf(!docker)(
    'refuses to deploy without REGISTRY or TAG: every node pulls, and `latest` is never implied',
    async () => {
      for (const missing of ['REGISTRY', 'TAG']) {
        const env = { ...process.env, REGISTRY: 'registry.example.com:5000', TAG: '1.0.0', [missing]: '' };
        await expect(
          execFileAsync(docker!, ['stack', 'config', '-c', stackFile], { timeout: 60_000, env }),
        ).rejects.toThrow(new RegExp(`required variable ${missing} is missing`));
      }
    },
  );

  it('every Compose service has a Swarm service, from the image `docker compose build` makes', () => {
    expect(Object.keys(compose)).toEqual(expect.arrayContaining(['front-end', 'back-end', 'proxy']));
    for (const [name, service] of Object.entries(compose)) {
      expect(stack.services[name], `Compose service ${name}`).toBeDefined();
      if (!service.build) continue;
      const [image] = String(service.image).split(':');
      expect(stack.services[name].image).toMatch(
        new RegExp(`^\\$\\{REGISTRY:\\?[^}]+\\}/${image}:\\$\\{TAG:\\?[^}]+\\}$`),
      );
    }
  });

  it('front-end, back-end and the database are in DNS round-robin: no virtual IP, which needs IPVS', () => {
    for (const [name, service] of services) {
      if (name === 'proxy') continue;
      expect(service.deploy?.endpoint_mode, name).toBe('dnsrr');
      expect(service.ports ?? [], `${name} publishes nothing`).toEqual([]);
    }
  });

  it("the proxy is published in host mode, on Compose's port", () => {
    const ports = stack.services.proxy.ports;
    expect(ports).toHaveLength(1);
    expect(ports[0]).toMatchObject({ target: 80, mode: 'host', protocol: 'tcp' });
    const [composePublished] = String(compose.proxy.ports[0]).split(/:(?=\d+$)/);
    expect(String(ports[0].published)).toBe(composePublished);
    // The upstream names and the resolver keep the image's defaults: the services' names, Docker's DNS.
    const env = Object.keys(stack.services.proxy.environment ?? {});
    expect(env).not.toContain('RESOLVER');
    expect(env).toEqual(expect.arrayContaining(Object.keys(compose.proxy.environment ?? {})));
  });

  it('every service rolls back a failed update, restarts, and has resource limits at least as tight as Compose', () => {
    for (const [name, service] of services) {
      // A job (migrate) runs to completion; Swarm refuses an update config for it.
      if (service.deploy?.mode !== 'replicated-job')
        expect(service.deploy?.update_config?.failure_action, name).toBe('rollback');
      expect(service.deploy?.restart_policy?.condition, name).toBeTruthy();
      const limits = service.deploy?.resources?.limits ?? {};
      expect(Object.keys(limits), name).toEqual(expect.arrayContaining(['cpus', 'memory']));
      if (compose[name]?.mem_limit)
        expect(bytes(limits.memory), name).toBeLessThanOrEqual(bytes(compose[name].mem_limit));
    }
  });

  it('every service is read-only, without capabilities, with a size-limited tmpfs on /tmp', () => {
    for (const [name, service] of services) {
      expect(service.read_only, name).toBe(true);
      expect(service.cap_drop, name).toEqual(['ALL']);
      const tmp = (service.volumes ?? []).find((v: Any) => typeof v === 'object' && v.target === '/tmp');
      expect(tmp?.type, name).toBe('tmpfs');
      expect(tmp?.tmpfs?.size, name).toBeGreaterThan(0);
    }
  });

  it('the database password reaches PostgreSQL and the back-end only as Swarm secrets', () => {
    const secretsOf = (service: Any): string[] =>
      (service.secrets ?? []).map((s: Any) => (typeof s === 'string' ? s : s.source));
    const text = readFileSync(stackFile, 'utf8');
    expect(text).not.toMatch(/POSTGRES_PASSWORD:|DATABASE_URL:|postgres(ql)?:\/\/\w+:/);
    const db = stack.services.db;
    expect(db.environment.POSTGRES_PASSWORD_FILE).toBe(`/run/secrets/${secretsOf(db)[0]}`);
    const backEnd = stack.services['back-end'];
    expect(backEnd.environment.DATABASE_URL_FILE).toBe(`/run/secrets/${secretsOf(backEnd)[0]}`);
    for (const name of [...secretsOf(db), ...secretsOf(backEnd)]) {
      expect(stack.secrets[name]?.external, `secret ${name} is created outside the repository`).toBe(true);
    }
  });

  it('placement: the database pinned to its labelled node, replicas spread, the proxy on visitor-facing nodes', () => {
    const { db, proxy } = stack.services;
    expect(db.deploy.placement.constraints).toEqual(['node.labels.softy-pinko.db == true']);
    expect(proxy.deploy.placement.constraints).toEqual(['node.labels.softy-pinko.edge == true']);
    for (const name of ['front-end', 'back-end']) {
      expect(stack.services[name].deploy.placement.preferences, name).toEqual([
        { spread: 'node.labels.softy-pinko.zone' },
      ]);
      expect(stack.services[name].deploy.replicas, name).toBeGreaterThanOrEqual(3);
    }
  });

  it('every update stops a task before starting its successor: the spread over nodes and the ports stay as placed', () => {
    for (const [name, service] of services) {
      // A job runs to completion; there is no running task to replace.
      if (service.deploy.mode === 'replicated-job') continue;
      expect(service.deploy.update_config.order, name).toBe('stop-first');
      if (service.deploy.rollback_config) expect(service.deploy.rollback_config.order, name).toBe('stop-first');
    }
  });

  it("the proxy's stop grace period covers its longest proxied request, in Compose and in Swarm", () => {
    const longest = proxyReadTimeoutSeconds();
    expect(seconds(compose.proxy.stop_grace_period), 'Compose').toBeGreaterThan(longest);
    expect(seconds(stack.services.proxy.stop_grace_period), 'Swarm').toBeGreaterThan(longest);
  });

  it("the back-end believes X-Forwarded-For and -Proto only from the proxy's own addresses, by its name", () => {
    const base = load(`${repoRoot}docker-compose.yml`).services;
    expect(base['back-end'].environment?.TRUSTED_PROXIES).toBe('proxy');
    // dnsrr-less services resolve to a virtual IP; tasks.<name> are the tasks' own addresses.
    expect(stack.services['back-end'].environment?.TRUSTED_PROXIES).toBe('tasks.proxy');
  });
});
