/**
 * deploy/kubernetes, proven without a cluster: every overlay renders with `kubectl kustomize`, every object
 * is valid for the Kubernetes 1.33 and Gateway API schemas and has no field they do not declare, and the
 * policies a platform engineer checks by eye hold, read against what the images really are.
 * Without kubectl this skips loudly; under CI=true it fails instead.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  backEndDrainSeconds,
  backEndRoutes,
  imageFacts,
  ourImages,
  proxyReadTimeoutSeconds,
  resolverValidSeconds,
  startSeconds,
  upstreamImages,
} from './images.js';
import {
  exampleTrustedProxies,
  findKubectl,
  overlays,
  render,
  renderAsIs,
  repoRoot,
  schemaErrors,
  unknownFieldChecker,
  type K8sObject,
  type Overlay,
} from './manifests.js';
import { alertsFile, prometheusRule, prometheusRuleFile } from './prometheus-rule.js';
import { clusterDns, connectionAllowed, podPeer, selects, workloads, type ContainerPort, type Peer } from './policy.js';

const kubectl = await findKubectl();
if (!kubectl) {
  const reason = 'kubectl (with kustomize) is not installed: set KUBECTL or install kubectl 1.32+';
  if (process.env.CI === 'true') throw new Error(`The Kubernetes manifests cannot be checked under CI=true: ${reason}`);
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING the Kubernetes manifest checks: ${reason}.\n${'!'.repeat(72)}\n`);
}

const rendered = Object.fromEntries(
  await Promise.all(overlays.map(async (o) => [o, kubectl ? await render(kubectl, `overlays/${o}`) : []] as const)),
) as Record<Overlay, K8sObject[]>;
/** Custom resources no model package describes: each has a test of its own below. */
const withoutModel = (o: K8sObject): boolean => o.apiVersion.startsWith('networking.gke.io/');
const everything = Object.values(rendered)
  .flat()
  .filter((o) => !withoutModel(o));
const checkUnknownFields = kubectl ? unknownFieldChecker(everything) : () => [];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered YAML
type Any = any;
const ofKind = (objects: K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);
const named = (objects: K8sObject[], kind: string, name: string): K8sObject | undefined =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);
const podSpec = (workload: K8sObject): Any => workload.spec.template.spec;
const containersOf = (workload: K8sObject): Any[] => [
  ...(podSpec(workload).initContainers ?? []),
  ...podSpec(workload).containers,
];
/** `registry.example.com/softy-pinko/back-end:1.0.0` → back-end; `postgres:17` → postgres. */
const imageName = (image: string): string =>
  image
    .split('/')
    .at(-1)!
    .split(/[:@]/)[0]!
    .replace(/^softy-pinko-/, '');
const isOurs = (name: string): name is (typeof ourImages)[number] => (ourImages as readonly string[]).includes(name);
/** A probe's or Service's port, by number or by the container's port name. */
const resolvePort = (ports: ContainerPort[], port: number | string): number | undefined =>
  typeof port === 'number'
    ? ports.find((p) => p.containerPort === port)?.containerPort
    : ports.find((p) => p.name === port)?.containerPort;

const describeRendered = kubectl ? describe : describe.skip;

describeRendered('kubectl kustomize', () => {
  it('renders the base and every overlay', async () => {
    const base = await render(kubectl!, 'base');
    for (const objects of [base, ...Object.values(rendered)]) {
      expect(
        ofKind(objects, 'Deployment')
          .map((d) => d.metadata.name)
          .sort(),
      ).toEqual(['back-end', 'front-end', 'proxy']);
    }
  });

  it('is kubectl 1.32 or newer, with kustomize', async () => {
    const { execFileSync } = await import('node:child_process');
    const version = JSON.parse(execFileSync(kubectl!, ['version', '--client', '-o', 'json'], { encoding: 'utf8' }));
    expect(Number(version.clientVersion.major)).toBe(1);
    expect(Number.parseInt(version.clientVersion.minor, 10)).toBeGreaterThanOrEqual(32);
    expect(version.kustomizeVersion).toMatch(/^v5\./);
  });
});

describeRendered('schemas', () => {
  it.each(overlays)('%s: every object is valid for the Kubernetes 1.33 and Gateway API schemas', (overlay) => {
    const invalid = rendered[overlay]
      .filter((o) => !withoutModel(o))
      .map((o) => [`${o.kind}/${o.metadata.name}`, schemaErrors(o)])
      .filter(([, e]) => e);
    expect(invalid).toEqual([]);
  });

  it.each(overlays)('%s: no object has a field its kind does not declare', (overlay) => {
    const unknown = rendered[overlay]
      .filter((o) => !withoutModel(o))
      .flatMap((o) => checkUnknownFields(o).map((f) => `${o.kind}/${o.metadata.name}: ${f}`));
    expect(unknown).toEqual([]);
  });

  it('the schemas catch a wrong type, and only our own check catches a misspelled field', () => {
    const deployment = structuredClone(named(rendered.production, 'Deployment', 'proxy')!);
    deployment.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
    expect(schemaErrors(deployment)).toBeUndefined();
    expect(checkUnknownFields(deployment)).toEqual([
      'spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem',
    ]);
    deployment.spec.replicas = 'three';
    expect(schemaErrors(deployment)).toMatch(/replicas/);
  });

  it('the production overlay has the HTTPRoute, checked against the Gateway API schema', () => {
    const route = named(rendered.production, 'HTTPRoute', 'softy-pinko');
    expect(route?.apiVersion).toBe('gateway.networking.k8s.io/v1');
    const broken = structuredClone(route!);
    broken.spec.rules[0].backendRefs[0].port = 'http';
    expect(schemaErrors(broken)).toMatch(/port/);
  });
});

describeRendered.each(overlays)('%s overlay: policies', (overlay) => {
  const objects = rendered[overlay];
  // Collected even when skipped (no kubectl): nothing rendered then, so nothing may be assumed here.
  const namespace = ofKind(objects, 'Namespace')[0];
  const ns = namespace?.metadata.name ?? '';
  const pods = workloads(objects);

  it('one namespace, enforcing the "restricted" Pod Security profile, holds every object', () => {
    expect(ofKind(objects, 'Namespace')).toHaveLength(1);
    expect(namespace?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const elsewhere = objects.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== ns);
    expect(elsewhere.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([]);
  });

  it('every object and pod carries the recommended app.kubernetes.io labels, instance included', () => {
    const instance = `softy-pinko-${overlay}`;
    for (const o of objects) {
      expect(o.metadata.labels?.['app.kubernetes.io/part-of'], `${o.kind}/${o.metadata.name}`).toBe('softy-pinko');
      expect(o.metadata.labels?.['app.kubernetes.io/instance'], `${o.kind}/${o.metadata.name}`).toBe(instance);
      expect(o.metadata.labels?.['app.kubernetes.io/managed-by'], `${o.kind}/${o.metadata.name}`).toBe('kustomize');
      // Objects of the whole namespace (the namespace, its policies, a shared Secret) belong to no one component.
      if (!['Namespace', 'Secret', 'NetworkPolicy'].includes(o.kind)) {
        expect(o.metadata.labels?.['app.kubernetes.io/name'], `${o.kind}/${o.metadata.name}`).toBeTruthy();
      }
    }
    for (const w of pods) {
      expect(w.spec.template.metadata.labels).toMatchObject({
        'app.kubernetes.io/name': w.metadata.name,
        'app.kubernetes.io/instance': instance,
        'app.kubernetes.io/part-of': 'softy-pinko',
        'app.kubernetes.io/managed-by': 'kustomize',
      });
      expect(w.spec.template.metadata.labels['app.kubernetes.io/component'], w.metadata.name).toBeTruthy();
      // Never in a selector: a selector cannot change, and the labels above may.
      expect(Object.keys(w.spec.selector.matchLabels ?? {}), w.metadata.name).toEqual(['app.kubernetes.io/name']);
    }
  });

  it('every container runs as a non-root numeric user matching its image, read-only, without capabilities', () => {
    for (const w of pods) {
      const pod = podSpec(w);
      for (const c of containersOf(w)) {
        const where = `${w.metadata.name}/${c.name}`;
        const effective = { ...pod.securityContext, ...c.securityContext };
        const image = imageName(c.image);
        const expected = isOurs(image) ? imageFacts(image) : upstreamImages[image];
        expect(expected, `${where}: no known user for image ${c.image}`).toBeDefined();
        expect(expected!.uid, `${where}: its Dockerfile's USER must be numeric`).toBeTypeOf('number');
        expect(effective.runAsNonRoot, where).toBe(true);
        expect(effective.runAsUser, where).toBe(expected!.uid);
        expect(effective.runAsUser, where).toBeGreaterThan(0);
        if (expected!.gid !== undefined) expect(effective.runAsGroup, where).toBe(expected!.gid);
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
        expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL']);
        expect(c.securityContext?.capabilities?.add ?? [], where).toEqual([]);
        expect(c.securityContext?.privileged ?? false, where).toBe(false);
        expect(effective.seccompProfile?.type, where).toBe('RuntimeDefault');
      }
    }
  });

  it('every pod meets the rest of the "restricted" profile: no host namespaces, allowed volumes and sysctls', () => {
    const allowedVolumes = [
      'configMap',
      'csi',
      'downwardAPI',
      'emptyDir',
      'ephemeral',
      'persistentVolumeClaim',
      'projected',
      'secret',
    ];
    const safeSysctls = [
      'kernel.shm_rmid_forced',
      'net.ipv4.ip_local_port_range',
      'net.ipv4.ip_unprivileged_port_start',
      'net.ipv4.tcp_syncookies',
      'net.ipv4.ping_group_range',
      'net.ipv4.ip_local_reserved_ports',
    ];
    for (const w of pods) {
      const pod = podSpec(w);
      expect([pod.hostNetwork, pod.hostPID, pod.hostIPC].filter(Boolean), w.metadata.name).toEqual([]);
      for (const volume of pod.volumes ?? []) {
        const type = Object.keys(volume).find((k) => k !== 'name')!;
        expect(allowedVolumes, `${w.metadata.name}: volume ${volume.name}`).toContain(type);
      }
      for (const sysctl of pod.securityContext?.sysctls ?? []) expect(safeSysctls).toContain(sysctl.name);
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
    }
  });

  it('/tmp is a size-limited emptyDir in every container, the only writable path besides data volumes', () => {
    for (const w of pods) {
      const pod = podSpec(w);
      for (const c of containersOf(w)) {
        // A sidecar writes nothing, and never shares the main container's /tmp.
        if (upstreamImages[imageName(c.image)]?.sidecar) {
          expect(c.volumeMounts ?? [], `${w.metadata.name}/${c.name}`).toEqual([]);
          continue;
        }
        const tmp = (c.volumeMounts ?? []).find((m: Any) => m.mountPath === '/tmp');
        expect(tmp, `${w.metadata.name}/${c.name}`).toBeDefined();
        const volume = (pod.volumes ?? []).find((v: Any) => v.name === tmp.name);
        expect(volume?.emptyDir?.sizeLimit, `${w.metadata.name}: /tmp's sizeLimit`).toMatch(/^\d+(Mi|Gi)$/);
      }
    }
  });

  it('every container has CPU, memory and ephemeral-storage requests and limits; the last holds its emptyDirs', () => {
    const mebibytes = (size: string): number => {
      const match = /^(\d+)(Mi|Gi)$/.exec(size);
      if (!match) throw new Error(`not a size in Mi or Gi: ${size}`);
      return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
    };
    for (const w of pods) {
      const volumes = podSpec(w).volumes ?? [];
      for (const c of containersOf(w)) {
        const where = `${w.metadata.name}/${c.name}`;
        for (const kind of ['requests', 'limits']) {
          expect(Object.keys(c.resources?.[kind] ?? {}).sort(), `${where} ${kind}`).toEqual([
            'cpu',
            'ephemeral-storage',
            'memory',
          ]);
        }
        const emptyDirs = (c.volumeMounts ?? [])
          .map((m: Any) => volumes.find((v: Any) => v.name === m.name)?.emptyDir?.sizeLimit)
          .filter(Boolean)
          .map(mebibytes)
          .reduce((a: number, b: number) => a + b, 0);
        // Logs count too: the limit must leave room beyond the emptyDirs.
        expect(mebibytes(c.resources.limits['ephemeral-storage']), where).toBeGreaterThan(emptyDirs);
      }
    }
  });

  it('every image has a tag, and none is latest', () => {
    for (const c of pods.flatMap(containersOf)) {
      expect(c.image, c.name).toMatch(/^[^@]+:[\w][\w.-]*$|@sha256:/);
      expect(c.image, c.name).not.toMatch(/:latest$/);
    }
  });

  // Production names our images by their commit; the dev overlay runs what `docker compose build` made on the
  // laptop (`dev`), loaded into kind.
  it('names our images by a commit in production, by the local dev build in dev', () => {
    const ours = pods.flatMap(containersOf).filter((c) => /(^|\/)softy-pinko-[\w-]+:/.test(c.image));
    expect(ours.length).toBeGreaterThan(0);
    const tag = overlay === 'production' ? /:[0-9a-f]{12}$/ : /:dev$/;
    for (const c of ours) expect(c.image, c.name).toMatch(tag);
  });

  it('probe paths and ports are what the images serve; liveness is the HEALTHCHECK, never the database', () => {
    const routes = backEndRoutes();
    for (const w of pods) {
      // Init containers run to completion before the probes start: they have none.
      for (const c of podSpec(w).containers) {
        const where = `${w.metadata.name}/${c.name}`;
        const ports: ContainerPort[] = c.ports ?? [];
        const image = imageName(c.image);
        expect(c.livenessProbe, where).toBeDefined();
        // A sidecar's failure must not take the pod out of its Service: it has no readiness probe.
        if (upstreamImages[image]?.sidecar) {
          expect(c.readinessProbe, `${where}: a sidecar must not gate readiness`).toBeUndefined();
        } else {
          expect(c.readinessProbe, where).toBeDefined();
        }
        if (!isOurs(image)) {
          const probe = upstreamImages[image]!.probe;
          if ('exec' in probe) {
            // PostgreSQL: readiness asks pg_isready; liveness only that the port answers.
            expect(c.readinessProbe.exec.command[0], where).toBe(probe.exec);
            expect(resolvePort(ports, c.livenessProbe.tcpSocket.port), where).toBe(5432);
          } else {
            for (const kind of ['readinessProbe', 'livenessProbe'].filter((k) => c[k])) {
              const { path, port } = c[kind].httpGet;
              expect({ path, port: resolvePort(ports, port) }, `${where} ${kind}`).toEqual(probe);
            }
          }
          continue;
        }
        const facts = imageFacts(image);
        for (const p of ports) {
          const served = p.name === 'metrics' ? [facts.metricsPort] : facts.exposed;
          expect(served, `${where}: port ${p.name} ${p.containerPort} served by the image`).toContain(p.containerPort);
        }
        const liveness = c.livenessProbe.httpGet;
        expect({ path: liveness.path, port: resolvePort(ports, liveness.port) }, `${where} liveness`).toEqual(
          facts.health,
        );
        const readiness = c.readinessProbe.httpGet;
        expect(resolvePort(ports, readiness.port), `${where} readiness port`).toBe(facts.health.port);
        const served = image === 'back-end' ? routes : [facts.health.path];
        expect(served, `${where} readiness path`).toContain(readiness.path);
        // The database-aware route would take every back-end out of DNS in a database outage, /api/hello too.
        expect(readiness.path, `${where} readiness`).not.toMatch(/ready/);
      }
    }
    // The back-end's HEALTHCHECK route is the process alone: no store or database in its handler.
    const health = readFileSync(`${repoRoot}back-end/src/routes/health.ts`, 'utf8');
    const liveRoute = /app\.get\(\s*'\/health'[\s\S]*?\);\n/.exec(health)?.[0] ?? '';
    expect(liveRoute).toMatch(/^app\.get/);
    expect(liveRoute).not.toMatch(/contactStore|\.store\b|database|pool|\.query\(|\bsql\b/i);
  });

  it("the preStop pause outlasts the proxy's resolver validity; the grace period covers pause and drain", () => {
    const valid = resolverValidSeconds();
    for (const name of ['front-end', 'back-end', 'proxy']) {
      const w = named(objects, 'Deployment', name)!;
      const c = podSpec(w).containers[0];
      const pause = c.lifecycle?.preStop?.sleep?.seconds;
      expect(pause, name).toBeGreaterThan(valid);
      // The proxy's longest request in flight waits proxy_read_timeout for its upstream.
      const drain = { 'back-end': backEndDrainSeconds(), proxy: proxyReadTimeoutSeconds(), 'front-end': 1 }[name]!;
      expect(podSpec(w).terminationGracePeriodSeconds, name).toBeGreaterThanOrEqual(pause + drain);
    }
  });

  it("every Service's selector picks pods, and its ports are theirs; front-end and back-end are headless", () => {
    for (const service of ofKind(objects, 'Service')) {
      const targets = pods.filter((w) =>
        selects({ matchLabels: service.spec.selector }, w.spec.template.metadata.labels),
      );
      expect(
        targets.map((w) => w.metadata.name),
        `Service/${service.metadata.name}`,
      ).toEqual([service.metadata.labels?.['app.kubernetes.io/name']]);
      const ports: ContainerPort[] = podSpec(targets[0]!).containers.flatMap((c: Any) => c.ports ?? []);
      for (const p of service.spec.ports) {
        expect(resolvePort(ports, p.targetPort ?? p.port), `Service/${service.metadata.name}:${p.port}`).toBeDefined();
      }
    }
    for (const name of ['front-end', 'back-end']) expect(named(objects, 'Service', name)?.spec.clusterIP).toBe('None');
  });

  it('every PodDisruptionBudget and the HPA target something that exists; the HPA owns the replica count', () => {
    for (const pdb of ofKind(objects, 'PodDisruptionBudget')) {
      // A pod that is not ready protects nothing; without this a drain waits on it forever.
      expect(pdb.spec.unhealthyPodEvictionPolicy, `PDB/${pdb.metadata.name}`).toBe('AlwaysAllow');
      const targets = pods.filter((w) => selects(pdb.spec.selector, w.spec.template.metadata.labels));
      expect(
        targets.map((w) => w.metadata.name),
        `PDB/${pdb.metadata.name}`,
      ).toEqual([pdb.metadata.name]);
    }
    const hpas = ofKind(objects, 'HorizontalPodAutoscaler');
    expect(hpas.map((h) => h.metadata.name)).toEqual(['back-end']);
    for (const hpa of hpas) {
      const { kind, name } = hpa.spec.scaleTargetRef;
      const target = named(objects, kind, name);
      expect(target, `HPA/${hpa.metadata.name} → ${kind}/${name}`).toBeDefined();
      expect(target!.spec.replicas, 'kubectl apply must not reset the autoscaler').toBeUndefined();
      expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    }
  });

  it('every Deployment spreads its pods over nodes, with a selector that matches them', () => {
    for (const w of ofKind(objects, 'Deployment')) {
      const spread = (podSpec(w).topologySpreadConstraints ?? []).find(
        (t: Any) => t.topologyKey === 'kubernetes.io/hostname',
      );
      expect(spread, w.metadata.name).toBeDefined();
      expect(selects(spread.labelSelector, w.spec.template.metadata.labels), w.metadata.name).toBe(true);
    }
  });

  it("the proxy's upstream host names are the Services' fully qualified names in the rendered namespace", () => {
    const proxy = podSpec(named(objects, 'Deployment', 'proxy')!).containers[0];
    const env = Object.fromEntries((proxy.env ?? []).map((e: Any) => [e.name, e.value]));
    const conf = readFileSync(`${repoRoot}proxy/proxy.conf`, 'utf8');
    // The cluster domain is one setting, CLUSTER_DOMAIN, which the kubelet expands in the names.
    expect(env.CLUSTER_DOMAIN).toMatch(/^[a-z0-9.-]+$/);
    for (const [variable, service] of [
      ['FRONT_END_HOST', 'front-end'],
      ['BACK_END_HOST', 'back-end'],
    ] as const) {
      expect(env[variable]).toBe(`${service}.${ns}.svc.$(CLUSTER_DOMAIN)`);
      // The port the proxy dials after the name is the Service's port.
      const port = Number(new RegExp(`server \\$\\{${variable}\\}:(\\d+)`).exec(conf)?.[1]);
      expect(named(objects, 'Service', service)?.spec.ports.map((p: Any) => p.port)).toContain(port);
    }
  });

  it('the database URL comes only as a file from a Secret volume (DATABASE_URL_FILE), never an env value', () => {
    const containers = pods.flatMap((pod) => containersOf(pod).map((c: Any) => ({ pod, c })));
    const uses = containers.flatMap(({ pod, c }: Any) =>
      (c.env ?? []).filter((e: Any) => e.name.startsWith('DATABASE_URL')).map((e: Any) => ({ pod, c, e })),
    );
    expect(uses.length).toBeGreaterThan(0);
    for (const { pod, c, e } of uses) {
      expect(e.name, 'not DATABASE_URL: an env value shows in `kubectl describe` and /proc').toBe('DATABASE_URL_FILE');
      const mount = (c.volumeMounts ?? []).find((m: Any) => e.value.startsWith(`${m.mountPath}/`));
      expect(mount, `${e.value} sits in a mounted volume`).toBeTruthy();
      expect(mount.readOnly).toBe(true);
      const volume = podSpec(pod).volumes.find((v: Any) => v.name === mount.name);
      expect(volume.secret?.secretName, 'a Secret volume').toBeTruthy();
      const secret = named(objects, 'Secret', volume.secret.secretName);
      // A generated Secret (dev) must hold the key; production's is created out of band.
      if (secret) expect(Object.keys(secret.data ?? {})).toContain(e.value.slice(mount.mountPath.length + 1));
    }
    for (const map of ofKind(objects, 'ConfigMap'))
      expect(JSON.stringify(map.data ?? {})).not.toMatch(/DATABASE_URL|postgres:\/\//);
    for (const c of pods.flatMap(containersOf)) {
      expect(
        (c.envFrom ?? []).filter((e: Any) => e.configMapRef),
        c.name,
      ).toEqual([]);
    }
  });

  it('every Compose service has a Kubernetes counterpart', () => {
    const composeFiles = ['docker-compose.yml', 'docker-compose.postgres.yml'].filter((f) =>
      existsSync(`${repoRoot}${f}`),
    );
    const services = composeFiles.flatMap((f) => Object.keys(parse(readFileSync(`${repoRoot}${f}`, 'utf8')).services));
    expect(services).toEqual(expect.arrayContaining(['front-end', 'back-end', 'proxy']));
    for (const service of services) {
      const workload = pods.find((w) => w.metadata.name === service);
      if (service === 'db' && overlay === 'production') {
        // A managed database: the back-end's Secret and an egress rule stand for it.
        expect(named(objects, 'NetworkPolicy', 'back-end-database')).toBeDefined();
        continue;
      }
      if (service === 'migrate') {
        // The one-shot migrations: an init container of the back-end, from the back-end's image.
        const backEnd = podSpec(named(objects, 'Deployment', 'back-end')!);
        const init = (backEnd.initContainers ?? []).find((c: Any) => c.name === 'migrate');
        expect(init?.command, 'the back-end runs migrate first').toEqual(['node', 'dist/cli/migrate.js']);
        expect(init.image).toBe(backEnd.containers[0].image);
        continue;
      }
      expect(workload, `Compose service ${service}`).toBeDefined();
      expect(named(objects, 'Service', service), `Compose service ${service}'s Service`).toBeDefined();
    }
  });

  it('every scraped pod names its metrics port as its prometheus.io/port annotation says', () => {
    const scraped = pods.filter((w) => w.spec.template.metadata.annotations?.['prometheus.io/scrape'] === 'true');
    expect(scraped.map((w) => w.metadata.name).sort()).toEqual(['back-end', 'proxy']);
    for (const w of scraped) {
      const port = Number(w.spec.template.metadata.annotations['prometheus.io/port']);
      const ports: ContainerPort[] = containersOf(w).flatMap((c) => c.ports ?? []);
      expect(ports.find((p) => p.name === 'metrics')?.containerPort, w.metadata.name).toBe(port);
    }
  });

  describe('NetworkPolicies, evaluated as an enforcing CNI would', () => {
    const policies = ofKind(objects, 'NetworkPolicy');
    const namespaces = ofKind(objects, 'Namespace');
    const pod = (name: string): Peer =>
      podPeer(
        pods.find((w) => w.metadata.name === name)!,
        namespaces,
      );
    const db: Peer = pods.some((w) => w.metadata.name === 'db') ? pod('db') : { kind: 'external', name: 'managed db' };
    const internet: Peer = { kind: 'external', name: 'internet' };
    const prometheus: Peer = {
      kind: 'pod',
      name: 'prometheus',
      namespace: 'monitoring',
      namespaceLabels: { 'kubernetes.io/metadata.name': 'monitoring' },
      labels: { 'app.kubernetes.io/name': 'prometheus' },
      ports: [],
    };

    it('deny by default, in both directions', () => {
      const deny = policies.filter((p) => Object.keys(p.spec.podSelector).length === 0);
      expect(
        deny.some(
          (p) =>
            p.spec.policyTypes.includes('Ingress') &&
            p.spec.policyTypes.includes('Egress') &&
            !p.spec.ingress &&
            !p.spec.egress,
        ),
      ).toBe(true);
    });

    it('only the proxy reaches the front-end and the back-end', () => {
      expect(connectionAllowed(policies, pod('proxy'), pod('front-end'), 9000)).toBe(true);
      expect(connectionAllowed(policies, pod('proxy'), pod('back-end'), 5252)).toBe(true);
      expect(connectionAllowed(policies, pod('front-end'), pod('back-end'), 5252)).toBe(false);
      expect(connectionAllowed(policies, pod('back-end'), pod('front-end'), 9000)).toBe(false);
      expect(connectionAllowed(policies, internet, pod('back-end'), 5252)).toBe(false);
      expect(connectionAllowed(policies, internet, pod('front-end'), 9000)).toBe(false);
      expect(connectionAllowed(policies, pod('proxy'), pod('back-end'), 22)).toBe(false);
    });

    it("the proxy's port 80 admits only the Gateway's namespace, by label: no other pod can forge a visitor", () => {
      const gatewayNamespace = ofKind(objects, 'HTTPRoute')[0]?.spec.parentRefs[0].namespace ?? 'gateway-system';
      const gateway = (namespace: string): Peer => ({
        kind: 'pod',
        name: `gateway in ${namespace}`,
        namespace,
        namespaceLabels: { 'kubernetes.io/metadata.name': namespace },
        labels: { 'app.kubernetes.io/name': 'gateway' },
        ports: [],
      });
      expect(connectionAllowed(policies, gateway(gatewayNamespace), pod('proxy'), 80)).toBe(true);
      expect(connectionAllowed(policies, gateway('some-other-team'), pod('proxy'), 80)).toBe(false);
      expect(connectionAllowed(policies, pod('front-end'), pod('proxy'), 80)).toBe(false);
      expect(connectionAllowed(policies, internet, pod('proxy'), 80)).toBe(false);
      expect(connectionAllowed(policies, gateway(gatewayNamespace), pod('proxy'), 8080)).toBe(false);
    });

    it('only the back-end reaches the database', () => {
      expect(connectionAllowed(policies, pod('back-end'), db, 5432)).toBe(true);
      expect(connectionAllowed(policies, pod('proxy'), db, 5432)).toBe(false);
      expect(connectionAllowed(policies, pod('front-end'), db, 5432)).toBe(false);
      if (db.kind === 'pod') expect(connectionAllowed(policies, internet, db, 5432)).toBe(false);
    });

    it('only Prometheus reaches the metrics ports', () => {
      expect(connectionAllowed(policies, prometheus, pod('proxy'), 9113)).toBe(true);
      expect(connectionAllowed(policies, prometheus, pod('back-end'), 9464)).toBe(true);
      expect(connectionAllowed(policies, pod('proxy'), pod('back-end'), 9464)).toBe(false);
      expect(connectionAllowed(policies, internet, pod('back-end'), 9464)).toBe(false);
      expect(connectionAllowed(policies, internet, pod('proxy'), 9113)).toBe(false);
      expect(connectionAllowed(policies, pod('front-end'), pod('proxy'), 9113)).toBe(false);
      expect(connectionAllowed(policies, prometheus, pod('back-end'), 5252)).toBe(false);
    });

    it('DNS only for the pods that resolve names, and no other way out', () => {
      for (const name of ['proxy', 'back-end']) {
        expect(connectionAllowed(policies, pod(name), clusterDns, 53, 'UDP'), name).toBe(true);
        expect(connectionAllowed(policies, pod(name), clusterDns, 53, 'TCP'), name).toBe(true);
      }
      expect(connectionAllowed(policies, pod('front-end'), clusterDns, 53, 'UDP')).toBe(false);
      for (const w of pods) {
        expect(connectionAllowed(policies, pod(w.metadata.name), internet, 443), w.metadata.name).toBe(false);
      }
    });
  });
});

describeRendered('overlays', () => {
  it('production: images from a registry, DATABASE_URL from an external Secret, an HTTPRoute to the proxy', () => {
    const objects = rendered.production;
    for (const c of workloads(objects).flatMap(containersOf)) {
      if (isOurs(imageName(c.image))) expect(c.image).toMatch(/^registry\.example\.com\//);
    }
    expect(workloads(objects).map((w) => w.metadata.name)).not.toContain('db');
    const route = named(objects, 'HTTPRoute', 'softy-pinko')!;
    const ref = route.spec.rules[0].backendRefs[0];
    expect(named(objects, 'Service', ref.name)?.spec.ports.map((p: Any) => p.port)).toContain(ref.port);
    expect(route.spec.parentRefs[0].kind ?? 'Gateway').toBe('Gateway');
    const env = podSpec(named(objects, 'Deployment', 'proxy')!).containers[0].env.map((e: Any) => e.name);
    expect(env).toEqual(expect.arrayContaining(['SERVER_NAME', 'TRUSTED_PROXIES']));
  });

  it("dev: the database password is the checkout's own, from git-ignored files, never in the repository", () => {
    const source = readFileSync(new URL('kubernetes/overlays/dev/kustomization.yaml', import.meta.url), 'utf8');
    expect(source).not.toMatch(/literals:|PASSWORD=\w|postgres(ql)?:\/\/\w+:/);
    const secret = ofKind(rendered.dev, 'Secret').find((s) => s.metadata.name.startsWith('database'))!;
    expect(Object.keys(secret.data).sort()).toEqual(['DATABASE_URL', 'postgres-password']);
    const ignored = spawnSync('git', ['check-ignore', '-q', 'deploy/kubernetes/overlays/dev/secrets/database-url'], {
      cwd: repoRoot,
    });
    expect(ignored.status, 'git ignores the secrets').toBe(0);
  });

  it('dev: a nightly pg_dump CronJob, restricted like the pods, reaching only the database', () => {
    const objects = rendered.dev;
    const cron = named(objects, 'CronJob', 'db-backup')!;
    expect(cron.spec.schedule).toMatch(/^(\S+\s+){4}\S+$/);
    expect(cron.spec).toMatchObject({ concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' });
    const pod = cron.spec.jobTemplate.spec.template;
    const spec = pod.spec;
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.automountServiceAccountToken).toBe(false);
    const [c] = spec.containers;
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    // Like every other container: CPU, memory and ephemeral storage, requested and capped.
    for (const kind of ['requests', 'limits']) {
      expect(Object.keys(c.resources[kind]).sort()).toEqual(['cpu', 'ephemeral-storage', 'memory']);
    }
    expect(pod.metadata.labels['app.kubernetes.io/instance']).toBe('softy-pinko-dev');
    const script = c.command.join(' ');
    expect(script).toMatch(/pg_dump --format=custom/);
    expect(script).toMatch(/PGPASSWORD="\$\(cat \/run\/secrets\/database\/postgres-password\)"/);
    const backups = spec.volumes.find((v: Any) => v.name === 'backups');
    expect(named(objects, 'PersistentVolumeClaim', backups.persistentVolumeClaim.claimName)).toBeDefined();
    const secretName = spec.volumes.find((v: Any) => v.name === 'database').secret.secretName;
    expect(Object.keys(named(objects, 'Secret', secretName)!.data)).toContain('postgres-password');
    // As an enforcing CNI would see it: the job reaches the database, and nothing else reaches or is reached.
    const policies = ofKind(objects, 'NetworkPolicy');
    const namespaces = ofKind(objects, 'Namespace');
    const peer = (w: K8sObject) => podPeer(w, namespaces);
    const job = peer({ ...cron, kind: 'Deployment', spec: { template: pod } });
    const db = peer(named(objects, 'StatefulSet', 'db')!);
    const backEnd = peer(named(objects, 'Deployment', 'back-end')!);
    expect(connectionAllowed(policies, job, db, 5432)).toBe(true);
    expect(connectionAllowed(policies, job, backEnd, 5252)).toBe(false);
    expect(connectionAllowed(policies, backEnd, job, 5432)).toBe(false);
  });

  it('dev: one PostgreSQL pod on a volume, marked as not highly available', () => {
    const db = named(rendered.dev, 'StatefulSet', 'db')!;
    expect(db.spec.replicas).toBe(1);
    expect(db.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeTruthy();
    expect(db.metadata.annotations?.['softy-pinko/not-highly-available']).toBeTruthy();
    const source = readFileSync(new URL('kubernetes/overlays/dev/postgres.yaml', import.meta.url), 'utf8');
    expect(source.split('\n')[0]).toMatch(/NOT HIGHLY AVAILABLE/);
    expect(named(rendered.dev, 'PodDisruptionBudget', 'db')).toBeUndefined();
  });
});

describeRendered.each(overlays)('%s overlay: the edge as a cluster runs it', (overlay) => {
  const objects = rendered[overlay];
  const pods = workloads(objects);
  const proxy = (): Any => podSpec(named(objects, 'Deployment', 'proxy')!);
  const envOf = (c: Any): Record<string, string> =>
    Object.fromEntries((c.env ?? []).filter((e: Any) => 'value' in e).map((e: Any) => [e.name, e.value]));

  it('no container can be killed by liveness before its image has had time to start', () => {
    for (const w of pods) {
      // Init containers take no probes: they run to completion before any of these start.
      for (const c of podSpec(w).containers as Any[]) {
        const image = imageName(c.image);
        const needed = isOurs(image) ? startSeconds(image) : upstreamImages[image]!.startSeconds;
        const probe = c.startupProbe ?? c.livenessProbe;
        const window = (probe.initialDelaySeconds ?? 0) + (probe.failureThreshold ?? 3) * (probe.periodSeconds ?? 10);
        expect(window, `${w.metadata.name}/${c.name}: ${window} s to start, needs ${needed} s`).toBeGreaterThanOrEqual(
          needed,
        );
      }
    }
  });

  it("the resolver's IPv6 is a setting of the proxy (RESOLVER_IPV6), not fixed in its configuration", () => {
    expect(envOf(proxy().containers[0]).RESOLVER_IPV6).toMatch(/^(on|off)$/);
    const conf = readFileSync(`${repoRoot}proxy/proxy.conf`, 'utf8');
    expect(conf).toMatch(/^resolver \$\{RESOLVER\} valid=\d+s ipv6=\$\{RESOLVER_IPV6\};$/m);
    expect(readFileSync(`${repoRoot}proxy/docker-entrypoint.d/16-proxy-settings.envsh`, 'utf8')).toMatch(
      /RESOLVER_IPV6 must be on or off/,
    );
  });

  it("the exporter sidecar reads stub_status on the pod's loopback, where nginx alone serves it", () => {
    const containers = proxy().containers;
    const exporter = containers.find((c: Any) => imageName(c.image) === 'nginx-prometheus-exporter');
    const listen = envOf(containers[0]).STUB_STATUS_LISTEN;
    expect(listen).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(exporter.args).toContain(`--nginx.scrape-uri=http://${listen}/stub_status`);
    expect(readFileSync(`${repoRoot}proxy/proxy.conf`, 'utf8')).toMatch(/listen \$\{STUB_STATUS_LISTEN\};/);
  });

  it('the back-end believes forwarded headers only from the proxy pods, by a Service that lists them all', () => {
    const backEnd = envOf(podSpec(named(objects, 'Deployment', 'back-end')!).containers[0]);
    const service = named(objects, 'Service', backEnd.TRUSTED_PROXIES!)!;
    expect(service, `TRUSTED_PROXIES=${backEnd.TRUSTED_PROXIES} names a Service`).toBeDefined();
    expect(service.spec.clusterIP).toBe('None');
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    const selected = pods.filter((w) =>
      selects({ matchLabels: service.spec.selector }, w.spec.template.metadata.labels),
    );
    expect(selected.map((w) => w.metadata.name)).toEqual(['proxy']);
  });
});

describeRendered('production overlay: behind a cloud Gateway', () => {
  const objects = rendered.production;
  const proxyService = () => named(objects, 'Service', 'proxy')!;

  it('refuses to render until the operator sets TRUSTED_PROXIES, saying so', async () => {
    const failure = await renderAsIs(kubectl!, 'overlays/production').then(
      () => 'rendered',
      (error: Error & { stderr?: string }) => error.stderr ?? error.message,
    );
    expect(failure).toMatch(/TRUSTED_PROXIES must be set/);
    const env = podSpec(named(objects, 'Deployment', 'proxy')!).containers[0].env;
    const trusted = env.find((e: Any) => e.name === 'TRUSTED_PROXIES');
    const map = named(objects, 'ConfigMap', trusted.valueFrom.configMapKeyRef.name)!;
    expect(map.data[trusted.valueFrom.configMapKeyRef.key]).toBe(exampleTrustedProxies);
    // No range wide enough to let any pod speak for a visitor.
    expect(JSON.stringify(objects)).not.toMatch(/10\.0\.0\.0\/8/);
  });

  it("GKE's HealthCheckPolicy points the load balancer at the proxy Service's /healthz", () => {
    const policies = ofKind(objects, 'HealthCheckPolicy');
    expect(policies).toHaveLength(1);
    const [policy] = policies as [K8sObject];
    expect(policy.apiVersion).toBe('networking.gke.io/v1');
    expect(policy.spec.targetRef).toEqual({ group: '', kind: 'Service', name: 'proxy' });
    const check = policy.spec.default.config;
    expect(check.type).toBe('HTTP');
    expect(check.httpHealthCheck.requestPath).toBe(imageFacts('proxy').health.path);
    expect(proxyService().spec.ports.map((p: Any) => p.port)).toContain(check.httpHealthCheck.port);
    // What it asks answers whatever the Host; `/` for an unknown Host is still refused.
    const conf = readFileSync(`${repoRoot}proxy/proxy.conf`, 'utf8');
    const defaultServer = /server \{\s*listen 80 default_server;[\s\S]*?\n\}/.exec(conf)?.[0] ?? '';
    expect(defaultServer).toContain('include snippets/healthz.conf;');
    expect(defaultServer).toMatch(/location \/ \{\s*return 444;/);
    expect(readFileSync(`${repoRoot}proxy/snippets/healthz.conf`, 'utf8')).toContain(
      `location = ${check.httpHealthCheck.requestPath}`,
    );
  });

  it("the Gateway's http listener redirects to HTTPS; only its https listener reaches the proxy", () => {
    const routes = ofKind(objects, 'HTTPRoute');
    const toProxy = routes.filter((r) => r.spec.rules.some((rule: Any) => rule.backendRefs));
    const redirects = routes.filter((r) =>
      r.spec.rules.every((rule: Any) =>
        (rule.filters ?? []).some((f: Any) => f.type === 'RequestRedirect' && f.requestRedirect.scheme === 'https'),
      ),
    );
    expect(toProxy.flatMap((r) => r.spec.parentRefs.map((p: Any) => p.sectionName))).toEqual(['https']);
    expect(redirects).toHaveLength(1);
    const [redirect] = redirects as [K8sObject];
    expect(redirect.spec.parentRefs.map((p: Any) => p.sectionName)).toEqual(['http']);
    expect(redirect.spec.rules.flatMap((rule: Any) => rule.backendRefs ?? [])).toEqual([]);
    const gateway = ({ name, namespace }: Any) => `${namespace}/${name}`;
    expect(redirect.spec.parentRefs.map(gateway)).toEqual(toProxy[0]!.spec.parentRefs.map(gateway));
    expect(redirect.spec.hostnames).toEqual(toProxy[0]!.spec.hostnames);
  });

  it('the exporter image comes from the same registry as ours, where no public pull limit applies', () => {
    const exporter = podSpec(named(objects, 'Deployment', 'proxy')!).containers.find(
      (c: Any) => imageName(c.image) === 'nginx-prometheus-exporter',
    );
    expect(exporter.image).toMatch(/^registry\.example\.com\//);
  });

  it("a PrometheusRule made from monitoring/alerts.yml, the one source, and a PodMonitor for the alerts' jobs", async () => {
    const alerts = readFileSync(alertsFile, 'utf8');
    // The committed file is what the generator makes of today's alerts.yml (prettier may lay it out).
    expect(parse(readFileSync(prometheusRuleFile, 'utf8')), 'run `npm run manifests:rules`').toEqual(
      parse(prometheusRule(alerts)),
    );
    const rule = named(objects, 'PrometheusRule', 'softy-pinko')!;
    expect(rule.spec.groups).toEqual(parse(alerts).groups);
    const monitor = named(objects, 'PodMonitor', 'softy-pinko')!;
    const scraped = workloads(objects).filter((w) => selects(monitor.spec.selector, w.spec.template.metadata.labels));
    // The job label is the pod's label named by jobLabel: every job an alert asks for is scraped.
    const jobs = scraped.map((w) => w.spec.template.metadata.labels[monitor.spec.jobLabel]);
    const asked = [...alerts.matchAll(/job="([^"]+)"/g)].map((m) => m[1]);
    expect(jobs.sort()).toEqual([...new Set(asked)].sort());
    for (const w of scraped) {
      const ports = containersOf(w).flatMap((c) => c.ports ?? []);
      for (const endpoint of monitor.spec.podMetricsEndpoints)
        expect(
          ports.map((p: ContainerPort) => p.name),
          w.metadata.name,
        ).toContain(endpoint.port);
    }
  });
});

describe("answers never show a container's or pod's name", () => {
  it('X-Served-By is an opaque id in both images that send it, never the host name', () => {
    const frontEnd = readFileSync(`${repoRoot}front-end/nginx/default.conf`, 'utf8');
    const served = [...frontEnd.matchAll(/add_header X-Served-By (\S+)/g)].map((m) => m[1]);
    expect(served.length).toBeGreaterThan(0);
    expect(new Set(served)).toEqual(new Set(['$served_by']));
    expect(frontEnd).not.toMatch(/add_header[^;]*\$hostname/);
    const app = readFileSync(`${repoRoot}back-end/src/app.ts`, 'utf8');
    expect(app).toMatch(/const servedBy = replicaId\(hostname\(\)\)/);
  });
});
