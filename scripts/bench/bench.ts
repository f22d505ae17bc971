/**
 * `npm run bench`: how fast the proxy and the API are, measured side by side in one run.
 *
 * Brings up the stack as Compose project `softy-pinko-bench` with docker-compose.bench.yml layered on top
 * (back-end and front-end published on 127.0.0.1, plus four references: a naive nginx, a tuned nginx in
 * front of a bare node:http server, that bare server, and a stock Fastify app), warms every target up,
 * then runs wrk against each target in turn, round after round, so that whatever else the machine is
 * doing hits every target alike. Every figure is a median over the rounds, every verdict a ratio between
 * targets of the same run. Then the durable-write rows (durable-posts.ts): `POST /api/contact` for the file
 * store before group commit, with it, and the PostgreSQL store. Writes the table to artifacts/bench/ and the
 * ratios as docs/bench-ratios.svg. The stacks come down at the end, also on failure or Ctrl-C, with their
 * volumes. Exit code 1 when a check fails.
 *
 *   BENCH_RUNS=7        rounds (at least 3)
 *   BENCH_DURATION=4    seconds per wrk run
 *   BENCH_WARMUP=5      seconds of the uncounted warm-up run per target
 *   BENCH_ONLY=posts    only some rows: `proxy` (GET, phases 1 and 2) or `posts` (POST); all when unset.
 *                       docs/bench-ratios.svg is drawn only by a run of all of them.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  dockerWorks,
  ensureBaseImages,
  freePort,
  isPortFree,
  proxyDnsRefreshMs,
  REPO_ROOT,
  requireCompose,
  run,
  Stack,
  withStack,
} from '../lib/stack.js';
import { ratioChart } from './chart.js';
import { check, passes, verdict, type Check } from './checks.js';
import {
  buildBaseline,
  measurePosts,
  postChecks,
  postgresStack,
  POSTS_METHOD,
  postRows,
  type PostTargets,
} from './durable-posts.js';
import {
  CONNECTIONS,
  DURATION_S,
  errorsIn,
  log,
  measure,
  pairedRatio,
  row,
  RUNS,
  selectedPhases,
  target,
  THREADS,
  warmUp,
  PHASES as ALL_PHASES,
  type Target,
} from './measure.js';

const PROJECT = 'softy-pinko-bench';
/** Images are built as softy-pinko-*:bench, so the bench never overwrites the stack suite's `e2e` images. */
const TAG = 'bench';
const OVERRIDE = `${REPO_ROOT}scripts/bench/docker-compose.bench.yml`;
const ARTIFACTS = `${REPO_ROOT}artifacts/bench`;
const CHART = `${REPO_ROOT}docs/bench-ratios.svg`;

const PHASES = selectedPhases(process.env.BENCH_ONLY);
/** What the back-end may hold under load, as docker stats reports it (MiB). */
const BACK_END_MEMORY_LIMIT = 80;
const HELLO = 'Hello, World!';

// ---------------------------------------------------------------------------------------- memory --

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, kB: 1e3, MB: 1e6, GB: 1e9 };

/** Memory of each container right now (docker stats), in MiB, by container ID prefix. */
async function memorySample(ids: string[]): Promise<Map<string, number>> {
  const format = ['--format', '{{.ID}}\t{{.MemUsage}}'];
  const { stdout } = await run('docker', ['stats', '--no-stream', ...format, ...ids], { timeoutMs: 30_000 });
  const sample = new Map<string, number>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [id, usage] = line.split('\t');
    const match = /^([\d.]+)\s*([A-Za-z]+)/.exec(usage?.trim() ?? '');
    if (id && match) sample.set(id.slice(0, 12), (Number(match[1]) * (UNITS[match[2]!] ?? NaN)) / 1024 ** 2);
  }
  return sample;
}

/** The largest docker stats sample of each container, taken in the middle of warm-up runs. */
class MemoryUnderLoad {
  readonly peak = new Map<string, number>();
  constructor(private readonly ids: () => string[]) {}

  warmUp(targets: Record<string, Target>): Promise<void> {
    return warmUp(targets, async () => {
      for (const [container, mib] of await memorySample(this.ids()))
        this.peak.set(container, Math.max(this.peak.get(container) ?? 0, mib));
    });
  }
}

// ---------------------------------------------------------------------------------------- the stack --

/**
 * Two adjacent free loopback ports, "P-(P+1)": one per back-end replica. Taken from outside the kernel's
 * ephemeral range: the second port is bound only when phase 2 scales the back-end, minutes later, and by
 * then a port in that range can be the source port of one of wrk's closed connections, still in TIME_WAIT.
 */
async function freePortPair(): Promise<string> {
  const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const [low, high] = text.trim().split(/\s+/).map(Number) as [number, number];
  const [from, to] = low - 2 >= 10_000 ? [10_000, low - 2] : [high + 1, 65_534];
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return `${port}-${port + 1}`;
  }
  throw new Error(`no two adjacent free ports on 127.0.0.1 between ${from} and ${to + 1}`);
}

const SERVICES = ['proxy', 'back-end', 'front-end', 'naive-proxy', 'tuned-proxy', 'node-hello', 'fastify-hello'];

/** Container ID (12 digits) of each service's first container. */
async function containerIds(stack: Stack): Promise<Record<string, string>> {
  const entries = await Promise.all(SERVICES.map(async (s) => [s, (await stack.containers(s))[0]?.slice(0, 12)]));
  const missing = entries.filter(([, id]) => !id).map(([s]) => s);
  if (missing.length) throw new Error(`no container for ${missing.join(', ')}`);
  return Object.fromEntries(entries) as Record<string, string>;
}

async function hostPort(id: string, containerPort: number): Promise<number> {
  const { stdout, code, stderr } = await run('docker', ['port', id, `${containerPort}/tcp`]);
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
  if (code !== 0 || !port) throw new Error(`docker port ${id} ${containerPort}: ${stderr || stdout}`);
  return port;
}

/** Fails unless the URL answers 200 with the expected body (any body when none is given). */
async function expectOk(url: string, expected?: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`GET ${url}: status ${response.status}`);
  if (expected !== undefined && body !== expected) throw new Error(`GET ${url}: unexpected ${JSON.stringify(body)}`);
  return body;
}

type Urls = Record<
  'proxy' | 'backEnd' | 'frontEnd' | 'naive' | 'tuned' | 'nodeHello' | 'fastifyHello' | 'proxyNodeHello' | 'before',
  string
>;

/** Every target answers what it should, the page and asset alike both ways; returns the asset's path. */
async function checkAnswers(urls: Urls): Promise<string> {
  const page = await expectOk(`${urls.proxy}/`);
  if (!page.includes('dynamic-content')) throw new Error('the proxy does not serve our page');
  await expectOk(`${urls.frontEnd}/`, page);
  const asset = /(?:src=|href=|import\()"(\/assets\/[^"]+)"/.exec(page)?.[1];
  if (!asset) throw new Error('the page names no /assets/ file');
  await expectOk(`${urls.frontEnd}${asset}`, await expectOk(`${urls.proxy}${asset}`));
  const apis = [urls.proxy, urls.backEnd, urls.naive, urls.tuned, urls.nodeHello, urls.fastifyHello];
  for (const base of [...apis, urls.proxyNodeHello, urls.before]) {
    await expectOk(`${base}/api/hello`, HELLO);
  }
  return asset;
}

/**
 * Nothing may be switched off to win: the proxied answer carries the request ID and security headers, and
 * that ID shows up in the proxy's JSON access log and in the back-end's JSON request line.
 */
async function featureProblems(stack: Stack, proxy: string): Promise<string[]> {
  const requestId = `bench-${Date.now()}`;
  const answer = await fetch(`${proxy}/api/hello`, { headers: { 'x-request-id': requestId } });
  const headers = ['x-request-id', 'content-security-policy', 'x-content-type-options', 'referrer-policy'];
  const problems = headers.filter((h) => !answer.headers.get(h)).map((h) => `no ${h} header`);
  await sleep(2500); // buffered logs flush within about a second
  const logs = (await stack.exec(['logs', '--no-color', '--tail', '200', 'proxy', 'back-end'])).stdout.split('\n');
  if (!logs.some((l) => l.startsWith('proxy') && l.includes(`"request_id":"${requestId}"`)))
    problems.push('no proxy access-log line for the request');
  if (!logs.some((l) => l.startsWith('back-end') && l.includes(`"reqId":"${requestId}"`)))
    problems.push('no back-end JSON log line for the request');
  return problems;
}

/** Scales the back-end to 2 replicas and checks both answer through the proxy: how many did. */
async function scaleTo2(stack: Stack, proxy: string): Promise<number> {
  log('scaling the back-end to 2 replicas …');
  await stack.scaleBackEnd(2);
  await stack.waitHealthy();
  await sleep(proxyDnsRefreshMs());
  const servedBy = new Set<string>();
  for (let i = 0; i < 40; i += 1) {
    const response = await fetch(`${proxy}/api/hello`);
    await response.text();
    servedBy.add(response.headers.get('x-served-by') ?? '?');
  }
  return servedBy.size;
}

// ------------------------------------------------------------------------------------------ report --

/** Phase 1's targets, in the order they run: neighbours are the pairs that get compared. */
function phase1Targets(urls: Urls, asset: string) {
  const gzip = ['Accept-Encoding: gzip'];
  return {
    nodeHello: target('bare `node:http` hello-world, direct', `${urls.nodeHello}/api/hello`),
    fastifyHello: target('stock Fastify + pino, one line per request, direct', `${urls.fastifyHello}/api/hello`),
    apiDirect: target('`GET /api/hello` back-end direct', `${urls.backEnd}/api/hello`),
    apiProxy: target('`GET /api/hello` through our proxy', `${urls.proxy}/api/hello`),
    tuned: target('tuned nginx (keep-alive, access log) → bare `node:http`', `${urls.tuned}/api/hello`),
    apiNaive: target('`GET /api/hello` through the naive nginx', `${urls.naive}/api/hello`),
    proxyNodeHello: target('our proxy → bare `node:http`', `${urls.proxyNodeHello}/api/hello`),
    apiBefore: target('`GET /api/hello` baseline back-end (before metrics), direct', `${urls.before}/api/hello`),
    pageProxy: target('`GET /` through our proxy', `${urls.proxy}/`, gzip),
    pageDirect: target('`GET /` front-end direct', `${urls.frontEnd}/`, gzip),
    assetProxy: target(`\`GET ${asset}\` through our proxy`, `${urls.proxy}${asset}`, gzip),
    assetDirect: target(`\`GET ${asset}\` front-end direct`, `${urls.frontEnd}${asset}`, gzip),
  };
}

type Phase1 = ReturnType<typeof phase1Targets>;

/** Every check of phase 1, keyed by the target it is shown with. */
function phase1Checks(t: Phase1, backEndMiB: number): Record<string, Check[]> {
  const ratio = (a: Target, b: Target, metric: 'rps' | 'p99Ms' = 'rps'): number => pairedRatio(a, b, metric);
  return {
    apiDirect: [check('req/s vs stock Fastify', ratio(t.apiDirect, t.fastifyHello), '≥', 0.9)],
    apiProxy: [
      check('req/s vs back-end direct', ratio(t.apiProxy, t.apiDirect), '≥', 0.6),
      check('p99 vs back-end direct', ratio(t.apiProxy, t.apiDirect, 'p99Ms'), '≤', 2.5),
      check('req/s vs naive nginx', ratio(t.apiProxy, t.apiNaive), '≥', 2),
    ],
    pageProxy: [
      check('req/s vs front-end direct', ratio(t.pageProxy, t.pageDirect), '≥', 0.8),
      check('p99 vs front-end direct', ratio(t.pageProxy, t.pageDirect, 'p99Ms'), '≤', 2.5),
    ],
    assetProxy: [
      check('req/s vs front-end direct', ratio(t.assetProxy, t.assetDirect), '≥', 0.8),
      check('p99 vs front-end direct', ratio(t.assetProxy, t.assetDirect, 'p99Ms'), '≤', 2.5),
    ],
    memory: [check('back-end memory under load (docker stats)', backEndMiB, '<', BACK_END_MEMORY_LIMIT, ' MiB')],
  };
}

const SUBJECTS: Record<string, string> = {
  apiDirect: 'back-end',
  apiProxy: 'API through the proxy',
  pageProxy: 'page through the proxy',
  assetProxy: 'asset through the proxy',
  fileStore: 'durable POST, file store',
  postgres: 'durable POST, PostgreSQL',
};
/** "API through the proxy: req/s vs back-end direct" */
const chartLabel = (key: string, c: Check): string =>
  `${SUBJECTS[key] ?? key}: ${c.what.replace(/ → bare node:http/, '')}`;
const stamp = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const FEATURES_ON = 'request ID and security headers in the answer, the ID in both JSON logs (proxy, back-end) ✅';
const tableHead = (target: string): string[] => [
  `| # | ${target} | req/s | p50 | p99 | ratios (checks) |`,
  '|---|---|---:|---:|---:|---|',
];

/** The results table; rows shown in reading order (references first), which is not the order they ran. */
function resultsTable(
  t: Phase1,
  p2: Record<'apiProxy2' | 'apiDirect2', Target>,
  checks: Record<string, Check[]>,
): string[] {
  const notes = (key: string, vs: number): string => checks[key]!.map((c) => `vs #${vs}: ${verdict(c)}`).join('<br>');
  const [apiVsDirect, apiP99, apiVsNaive] = checks.apiProxy!.map(verdict);
  const infoVs = (n: number, a: Target, b: Target): string =>
    `vs #${n}: req/s **${pairedRatio(a, b, 'rps').toFixed(2)}×** (information)`;
  const info = infoVs(1, t.apiDirect, t.nodeHello);
  const [rps2, p99s2] = (['rps', 'p99Ms'] as const).map((m) => pairedRatio(p2.apiProxy2, p2.apiDirect2, m).toFixed(2));
  const scaled = `req/s **${rps2}×**, p99 **${p99s2}×** (no target)`;
  return [
    row(1, t.nodeHello, 'reference'),
    row(2, t.fastifyHello, 'reference'),
    row(3, t.apiDirect, `${notes('apiDirect', 2)}<br>${info}`),
    row(4, t.tuned, 'reference'),
    row(5, t.apiNaive, 'reference: stock nginx.conf + two bare `proxy_pass`'),
    // Against the tuned reference is information only: our proxy carries logs, IDs, headers and a rate limit.
    row(
      6,
      t.apiProxy,
      `vs #3: ${apiVsDirect}<br>vs #3: ${apiP99}<br>${infoVs(4, t.apiProxy, t.tuned)}<br>vs #5: ${apiVsNaive}`,
    ),
    row(7, t.proxyNodeHello, `${infoVs(4, t.proxyNodeHello, t.tuned)}: the proxy alone, same upstream as #4`),
    row(8, t.apiBefore, `${infoVs(3, t.apiBefore, t.apiDirect)}: before ÷ after`),
    row(9, t.pageDirect, 'reference'),
    row(10, t.pageProxy, notes('pageProxy', 9)),
    row(11, t.assetDirect, 'reference'),
    row(12, t.assetProxy, notes('assetProxy', 11)),
    '| | **phase 2: back-end scaled to 2 replicas** | | | | |',
    row(13, p2.apiDirect2, 'reference'),
    row(14, p2.apiProxy2, `vs #13: ${scaled}`),
  ];
}

async function machine(): Promise<string> {
  const docker = (await run('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  const composeVersion = (await run('docker', ['compose', 'version', '--short'])).stdout.trim();
  const wrkHelp = await run('wrk', ['--version']);
  const wrkVersion = /wrk (\S+)/.exec(wrkHelp.stdout + wrkHelp.stderr)?.[1] ?? '?';
  const cpu = `${cpus().length} cores, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`;
  const memory = `${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM`;
  return `${cpu}, ${memory}, Linux ${release()}; Docker ${docker}, Compose ${composeVersion}, wrk ${wrkVersion}`;
}

/** The chart is drawn only from a run of every phase: docs/bench-ratios.svg always shows them all. */
async function writeArtifacts(markdown: string, raw: object, chart: string | undefined): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  await writeFile(`${ARTIFACTS}/bench-${stamp}.md`, `${markdown}\n`);
  await writeFile(`${ARTIFACTS}/bench-${stamp}.json`, `${JSON.stringify(raw, null, 2)}\n`);
  await writeFile(`${ARTIFACTS}/latest.md`, `${markdown}\n`);
  if (chart) await writeFile(CHART, chart);
  const andChart = chart ? ' and docs/bench-ratios.svg' : '';
  log(`written to artifacts/bench/bench-${stamp}.md (latest.md; raw runs in .json)${andChart}`);
}

// -------------------------------------------------------------------------------------------- main --

/** The bench stack, and the PostgreSQL one when the durable-write rows are measured (up only for them). */
interface Stacks {
  stack: Stack;
  postgres: Stack | undefined;
}

interface ProxyPhases {
  t: Phase1;
  p2: Record<'apiProxy2' | 'apiDirect2', Target>;
  problems: string[];
  backEndMiB: number;
}

/** Phase 1 with one back-end replica, then phase 2 with two behind the proxy against one reached directly. */
async function measureBoth(stack: Stack, urls: Urls, ids: Record<string, string>, stop: AbortSignal) {
  const t = phase1Targets(urls, await checkAnswers(urls));
  const problems = await featureProblems(stack, urls.proxy);
  let backEndIds = [ids['back-end']!];
  const memory = new MemoryUnderLoad(() => [...new Set([...Object.values(ids), ...backEndIds])]);
  await memory.warmUp(t);
  await measure(t, RUNS, stop);

  const replicas = await scaleTo2(stack, urls.proxy);
  if (replicas < 2) problems.push(`2 replicas but only ${replicas} answered through the proxy`);
  backEndIds = (await stack.containers('back-end')).map((id) => id.slice(0, 12));
  const p2 = {
    apiProxy2: target('`GET /api/hello` through our proxy, **2 back-end replicas**', `${urls.proxy}/api/hello`),
    apiDirect2: target('`GET /api/hello` back-end direct (1 replica, same phase)', `${urls.backEnd}/api/hello`),
  };
  await memory.warmUp(p2);
  await measure(p2, RUNS, stop);
  const backEndMiB = Math.max(...backEndIds.map((id) => memory.peak.get(id) ?? NaN));
  return { t, p2, problems, backEndMiB } satisfies ProxyPhases;
}

/** What a run measured: the phases BENCH_ONLY left in. */
interface Measured {
  proxy?: ProxyPhases;
  posts?: PostTargets;
}

/** The durable-write rows, with the bench stack's back-end at one replica again if phase 2 scaled it. */
async function measurePostPhase(stack: Stack, postgres: Stack, urls: Urls, baselineProxy: string) {
  if ((await stack.containers('back-end')).length > 1) {
    await stack.scaleBackEnd(1);
    await sleep(proxyDnsRefreshMs());
  }
  return measurePosts(postgres, { baseline: baselineProxy, fileStore: urls.proxy });
}

/** The table: phases 1 and 2, then the durable-write rows, whichever of them ran. */
function tableLines({ proxy, posts }: Measured, checks: Record<string, Check[]>): string[] {
  const lines = proxy
    ? [...tableHead('target (phase 1: 1 back-end replica)'), ...resultsTable(proxy.t, proxy.p2, checks)]
    : tableHead('target');
  return posts ? [...lines, ...postRows(posts, checks, 15)] : lines;
}

/** The Markdown report, the checks and how many of them (features and failed requests included) failed. */
function report(measured: Measured, machineLine: string) {
  const { proxy, posts } = measured;
  const checks: Record<string, Check[]> = {
    ...(proxy && phase1Checks(proxy.t, proxy.backEndMiB)),
    ...(posts && postChecks(posts)),
  };
  const problems = proxy?.problems ?? [];
  const errors = errorsIn([...Object.values({ ...proxy?.t, ...proxy?.p2 }), ...Object.values(posts ?? {})]);
  const failed =
    Object.values(checks)
      .flat()
      .filter((c) => !passes(c)).length +
    problems.length +
    (errors ? 1 : 0);
  const markdown = [
    `### Benchmark — ${stamp()}`,
    '',
    `Machine: ${machineLine}.`,
    `Load: wrk, ${CONNECTIONS} connections, ${THREADS} threads, ${DURATION_S}s per run, ${RUNS} rounds, ` +
      'every target reached through a port published on 127.0.0.1; page and asset with `Accept-Encoding: gzip`. ' +
      'req/s, p50 and p99 are medians over the rounds; each ratio is the median of the per-round ratios.' +
      (posts ? ` ${POSTS_METHOD}` : ''),
    '',
    ...tableLines(measured, checks),
    '',
    ...(proxy
      ? [
          `Back-end under load: ${verdict(checks.memory![0]!)} (largest sample over all replicas).`,
          `Features on: ${problems.length ? `❌ ${problems.join('; ')}` : FEATURES_ON}.`,
        ]
      : []),
    `Failed requests during measured runs: ${errors ? `${errors} ❌` : '0 ✅'}.`,
    '',
    failed === 0 ? '**All checks pass.**' : `**${failed} check(s) failed.**`,
  ].join('\n');
  return { markdown, checks, failed };
}

/** Everything between the stack coming up and going down: returns the exit code. */
async function benchmark(stacks: Stacks, ports: Record<string, number>, machineLine: string, stop: AbortSignal) {
  const { stack, postgres } = stacks;
  const at = (port: number): string => `http://127.0.0.1:${port}`;
  const ids = await containerIds(stack);
  const urls: Urls = {
    proxy: at(ports.proxy!),
    backEnd: at(await hostPort(ids['back-end']!, 5252)),
    frontEnd: at(ports.frontEnd!),
    naive: at(ports.naive!),
    tuned: at(ports.tuned!),
    nodeHello: at(ports.nodeHello!),
    fastifyHello: at(ports.fastifyHello!),
    proxyNodeHello: at(ports.proxyNodeHello!),
    before: at(ports.baselineBackEnd!),
  };
  const measured: Measured = {};
  if (PHASES.has('proxy')) measured.proxy = await measureBoth(stack, urls, ids, stop);
  if (postgres) measured.posts = await measurePostPhase(stack, postgres, urls, at(ports.baselineProxy!));
  const { markdown, checks, failed } = report(measured, machineLine);
  console.log(`\n${markdown}\n`);
  const raw = { machine: machineLine, runs: RUNS, durationS: DURATION_S, ...measured, checks };
  const rows = Object.entries(checks).flatMap(([key, list]) =>
    list.map((c) => ({ label: chartLabel(key, c), check: c })),
  );
  const title = `npm run bench, ${RUNS} rounds of ${DURATION_S}s (${stamp()})`;
  await writeArtifacts(markdown, raw, PHASES.size === ALL_PHASES.length ? ratioChart(rows, title) : undefined);
  return failed === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  if (!(await dockerWorks())) throw new Error('no Docker engine is reachable (`docker info` failed)');
  if ((await run('sh', ['-c', 'command -v wrk'])).code !== 0)
    throw new Error('wrk is not installed (apt-get install wrk)');
  await ensureBaseImages('bench');
  await requireCompose();
  const names = ['proxy', 'frontEnd', 'naive', 'tuned', 'nodeHello', 'fastifyHello', 'baselineProxy'] as const;
  const ports: Record<string, number> = {};
  for (const key of [...names, 'proxyNodeHello', 'baselineBackEnd']) ports[key] = await freePort();
  const env = {
    // The proxy's API rate limit stays on (its lookup is paid on every request), but wrk is one address
    // standing in for a crowd of visitors, so the threshold is raised out of its way.
    API_RATE_LIMIT: '1000000r/s',
    API_RATE_BURST: '1000000',
    BENCH_BACK_END_PORTS: await freePortPair(),
    BENCH_FRONT_END_PORT: String(ports.frontEnd),
    BENCH_NAIVE_PROXY_PORT: String(ports.naive),
    BENCH_TUNED_PROXY_PORT: String(ports.tuned),
    BENCH_NODE_HELLO_PORT: String(ports.nodeHello),
    BENCH_FASTIFY_HELLO_PORT: String(ports.fastifyHello),
    BENCH_BASELINE_PROXY_PORT: String(ports.baselineProxy),
    BENCH_PROXY_NODE_HELLO_PORT: String(ports.proxyNodeHello),
    BENCH_BASELINE_BACK_END_PORT: String(ports.baselineBackEnd),
  };
  const stack = new Stack(PROJECT, ports.proxy!, env, { files: [OVERRIDE], tag: TAG });
  const postgres = PHASES.has('posts') ? await postgresStack(env, { tag: TAG }) : undefined;
  const machineLine = await machine();
  await buildBaseline(); // the bench stack's baseline-back-end runs it, whichever rows are measured
  log(`bringing up ${PROJECT} (proxy on 127.0.0.1:${ports.proxy}) …`);
  return withStack(stack, 'bench', (stop) => benchmark({ stack, postgres }, ports, machineLine, stop));
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[bench] failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
