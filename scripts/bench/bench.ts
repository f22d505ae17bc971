/**
 * `npm run bench` (BENCHMARKS.md): wrk against the stack (Compose project softy-pinko-bench, with the references
 * of docker-compose.bench.yml) in interleaved rounds, then the durable writes with softy-pinko-bench-postgres up
 * beside it. Prints the table, writes it to artifacts/bench/, takes everything down and exits 1 when a check fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import * as lib from '../lib/stack.js';
import { Stack, run } from '../lib/stack.js';
import { CONNECTIONS, DURATION_S, RUNS, check, info, log, measure, pairedRatio, passes, row } from './measure.js';
import { target, verdict, type Check, type Target } from './measure.js';

/** The last commit before group commit: its back-end is the file store the durable writes are held against. */
const BASELINE_COMMIT = '145b43da7304f69fc3caaef81136c10b72b12e71';
/** Named in docker-compose.bench.yml's baseline-back-end; Compose never builds it. */
const BASELINE_IMAGE = 'softy-pinko-back-end:bench-baseline';
const BR = '<br>';
const PORTS = ['proxy', 'backEnd', 'frontEnd', 'naive', 'tuned', 'node', 'fastify', 'baseline', 'postgres'] as const;
type Urls = Record<(typeof PORTS)[number], string>;

/** Builds BASELINE_IMAGE from the commit's own files (git archive as the context); cached after once. */
async function buildBaseline(): Promise<void> {
  log(`building ${BASELINE_IMAGE} from commit ${BASELINE_COMMIT.slice(0, 7)} …`);
  const { NODE_IMAGE } = { ...lib.OFFICIAL_BASE_IMAGES, ...lib.dotEnv() };
  const build = `git archive --format=tar ${BASELINE_COMMIT} | docker build --quiet --file back-end/Dockerfile \
    --build-arg NODE_IMAGE --tag ${BASELINE_IMAGE} -`;
  await lib.runLoud('bash', ['-o', 'pipefail', '-c', build], { NODE_IMAGE });
}

/** The largest memory (MiB) docker stats reports right now over the back-end's containers. */
async function backEndMiB(stack: Stack): Promise<number> {
  const ids = await stack.containers('back-end');
  const { stdout } = await run('docker', ['stats', '--no-stream', '--format', '{{.MemUsage}}', ...ids]);
  const units: Record<string, number> = { KiB: 1 / 1024, MiB: 1, GiB: 1024, kB: 1e3 / 2 ** 20, MB: 1e6 / 2 ** 20 };
  const mib = stdout.split('\n').map((l) => /^([\d.]+)\s*(\w+)/.exec(l.trim()) ?? []);
  return Math.max(...mib.filter((m) => m[1]).map((m) => Number(m[1]) * (units[m[2]!] ?? NaN)));
}

/** Fails unless the URL answers `status` with the expected body (any body when none is given). */
async function expectOk(url: string, expected?: string, init: RequestInit = {}, status = 200): Promise<string> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  if (response.status !== status) throw new Error(`${url}: status ${response.status}: ${body.slice(0, 200)}`);
  if (expected !== undefined && body !== expected) throw new Error(`${url}: unexpected ${JSON.stringify(body)}`);
  return body;
}

/** Every GET target answers what it should, the page and asset alike both ways; returns the asset's path. */
async function checkAnswers(urls: Urls): Promise<string> {
  const page = await expectOk(`${urls.proxy}/`);
  await expectOk(`${urls.frontEnd}/`, page);
  const asset = /(?:src=|href=|import\()"(\/assets\/[^"]+)"/.exec(page)?.[1];
  if (!page.includes('dynamic-content') || !asset) throw new Error('the proxy does not serve our page');
  await expectOk(`${urls.frontEnd}${asset}`, await expectOk(`${urls.proxy}${asset}`));
  for (const base of [urls.proxy, urls.backEnd, urls.naive, urls.tuned, urls.node, urls.fastify])
    await expectOk(`${base}/api/hello`, 'Hello, World!');
  return asset;
}

/** One message through each proxy is stored (201), and the current back-ends run the store named. */
async function checkPosts(urls: Urls): Promise<void> {
  const body = JSON.stringify({ name: 'Bench', email: 'bench@example.com', message: 'Checking before the runs.' });
  const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
  for (const base of [urls.baseline, urls.proxy, urls.postgres])
    await expectOk(`${base}/api/contact`, undefined, init, 201);
  const stores = { file: urls.proxy, postgres: urls.postgres };
  for (const [store, base] of Object.entries(stores)) {
    const ready = JSON.parse(await expectOk(`${base}/api/health/ready`)) as { store?: string };
    if (ready.store !== store) throw new Error(`${base}: the store is ${String(ready.store)}, not ${store}`);
  }
}

/** Nothing is switched off to win: the request ID and headers are in the answer, the ID in both JSON logs. */
async function featureProblems(stack: Stack, proxy: string): Promise<string[]> {
  const requestId = `bench-${Date.now()}`;
  const answer = await fetch(`${proxy}/api/hello`, { headers: { 'x-request-id': requestId } });
  const headers = ['x-request-id', 'content-security-policy', 'x-content-type-options', 'referrer-policy'];
  const problems = headers.filter((h) => !answer.headers.get(h)).map((h) => `no ${h} header`);
  await sleep(2500); // buffered logs flush within about a second
  const logs = (await stack.exec(['logs', '--no-color', '--tail', '200', 'proxy', 'back-end'])).stdout.split('\n');
  for (const [service, field] of Object.entries({ proxy: 'request_id', 'back-end': 'reqId' }))
    if (!logs.some((l) => l.startsWith(service) && l.includes(`"${field}":"${requestId}"`)))
      problems.push(`no ${service} JSON log line for the request`);
  return problems;
}

/** Every target, in the order they run: neighbours are the pairs compared. */
function targetsOf(u: Urls, asset: string) {
  const hello = (base: string): string => `${base}/api/hello`;
  return {
    nodeHello: target('bare `node:http` hello-world, direct', hello(u.node)),
    fastify: target('stock Fastify + pino, one line per request, direct', hello(u.fastify)),
    apiDirect: target('`GET /api/hello` back-end direct', hello(u.backEnd)),
    apiProxy: target('`GET /api/hello` through our proxy', hello(u.proxy)),
    tuned: target('tuned nginx (keep-alive, access log) → bare `node:http`', hello(u.tuned)),
    naive: target('`GET /api/hello` through the naive nginx', hello(u.naive)),
    pageProxy: target('`GET /` through our proxy', `${u.proxy}/`, 'gzip'),
    pageDirect: target('`GET /` front-end direct', `${u.frontEnd}/`, 'gzip'),
    assetProxy: target(`\`GET ${asset}\` through our proxy`, `${u.proxy}${asset}`, 'gzip'),
    assetDirect: target(`\`GET ${asset}\` front-end direct`, `${u.frontEnd}${asset}`, 'gzip'),
    baseline: target('`POST /api/contact`, file store before group commit', `${u.baseline}/api/contact`, 'post'),
    fileStore: target('`POST /api/contact`, file store with group commit', `${u.proxy}/api/contact`, 'post'),
    postgres: target('`POST /api/contact`, PostgreSQL store', `${u.postgres}/api/contact`, 'post'),
  };
}
type Targets = ReturnType<typeof targetsOf>;

/** Every check, keyed by the target it is shown with. */
function checksOf(t: Targets, memoryMiB: number): Record<string, Check[]> {
  const vsDirect = (a: Target, b: Target): Check[] => [
    check('req/s vs front-end direct', pairedRatio(a, b), '≥', 0.8),
    check('p99 vs front-end direct', pairedRatio(a, b, 'p99Ms'), '≤', 2.5),
  ];
  return {
    apiDirect: [check('req/s vs stock Fastify', pairedRatio(t.apiDirect, t.fastify), '≥', 0.8)],
    apiProxy: [
      check('req/s vs back-end direct', pairedRatio(t.apiProxy, t.apiDirect), '≥', 0.6),
      check('p99 vs back-end direct', pairedRatio(t.apiProxy, t.apiDirect, 'p99Ms'), '≤', 2.5),
      check('req/s vs naive nginx', pairedRatio(t.apiProxy, t.naive), '≥', 2),
    ],
    pageProxy: vsDirect(t.pageProxy, t.pageDirect),
    assetProxy: vsDirect(t.assetProxy, t.assetDirect),
    fileStore: [check('req/s vs file store before group commit', pairedRatio(t.fileStore, t.baseline), '≥', 2)],
    // Half the back-end's 256 MB container limit.
    memory: [check('back-end memory under load (docker stats)', memoryMiB, '<', 128, ' MiB')],
  };
}

/** The results table, references first (not the order they ran); the checks stand beside their rows. */
function tableRows(t: Targets, checks: Record<string, Check[]>): string[] {
  const vs = (n: number, key: string, from = 0, to?: number): string[] =>
    checks[key]!.slice(from, to).map((c) => `vs #${n}: ${verdict(c)}`);
  return [
    '| # | target | req/s | p50 | p99 | ratios (checks) |',
    '|---|---|---:|---:|---:|---|',
    row(1, t.nodeHello, 'reference'),
    row(2, t.fastify, 'reference'),
    row(3, t.apiDirect, [...vs(2, 'apiDirect'), info(1, t.apiDirect, t.nodeHello)].join(BR)),
    row(4, t.tuned, 'reference'),
    row(5, t.naive, 'reference: stock nginx.conf + two bare `proxy_pass`'),
    row(6, t.apiProxy, [...vs(3, 'apiProxy', 0, 2), info(4, t.apiProxy, t.tuned), ...vs(5, 'apiProxy', 2)].join(BR)),
    row(7, t.pageDirect, 'reference'),
    row(8, t.pageProxy, vs(7, 'pageProxy').join(BR)),
    row(9, t.assetDirect, 'reference'),
    row(10, t.assetProxy, vs(9, 'assetProxy').join(BR)),
    '| | **durable writes: `POST /api/contact`, 201 only once the message is on disk** | | | | |',
    row(11, t.baseline, 'reference: one write and one datasync per message'),
    row(12, t.fileStore, vs(11, 'fileStore').join(BR)),
    row(13, t.postgres, info(11, t.postgres, t.baseline)),
  ];
}

/** The Markdown report, and how many checks (features and failed requests included) failed. */
function report(t: Targets, memoryMiB: number, problems: string[]) {
  const checks = checksOf(t, memoryMiB);
  const errors = Object.values(t).reduce((sum, x) => sum + x.runs.reduce((s, r) => s + r.errors, 0), 0);
  const failedChecks = Object.values(checks)
    .flat()
    .filter((c) => !passes(c));
  const failed = failedChecks.length + problems.length + (errors ? 1 : 0);
  const markdown = [
    `### Benchmark — ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
    `${cpus().length} cores, ${cpus()[0]?.model.trim()}; wrk, ${CONNECTIONS} connections, ${RUNS} rounds of ${DURATION_S} s. req/s, p50 and p99 are ` +
      'medians over the rounds; a ratio is the median of the per-round ratios.',
    '',
    ...tableRows(t, checks),
    '',
    `${verdict(checks.memory![0]!)} (largest sample); features on: ` +
      `${problems.length ? `❌ ${problems.join('; ')}` : 'request ID, headers, both JSON log lines ✅'}; ` +
      `failed requests: ${errors ? `${errors} ❌` : '0 ✅'}.`,
    '',
    failed === 0 ? '**All checks pass.**' : `**${failed} check(s) failed.**`,
  ].join('\n');
  return { markdown, failed, checks };
}

/** The GETs on the bench stack, then the durable writes with the PostgreSQL stack up beside it. */
async function measureAll(stack: Stack, postgres: Stack, urls: Urls, stop: AbortSignal) {
  const t = targetsOf(urls, await checkAnswers(urls));
  const problems = await featureProblems(stack, urls.proxy);
  let memoryMiB = 0;
  const sample = async (): Promise<void> => void (memoryMiB = Math.max(memoryMiB, await backEndMiB(stack)));
  await measure(Object.values(t).slice(0, 10), stop, sample); // the GETs: nodeHello to assetDirect
  await lib.withStack(postgres, 'bench', async (stopPosts) => {
    await checkPosts(urls);
    await measure([t.baseline, t.fileStore, t.postgres], stopPosts);
  });
  return { t, memoryMiB, problems };
}

async function main(): Promise<number> {
  if ((await run('sh', ['-c', 'command -v wrk'])).code !== 0)
    throw new Error('wrk is not installed (apt-get install wrk)');
  await lib.prepareDocker('bench');
  const port: Record<string, number> = {};
  for (const key of PORTS) port[key] = await lib.freePort();
  const ports = PORTS.map((key) => [`BENCH_${key.replace(/[A-Z]/g, '_$&').toUpperCase()}_PORT`, `${port[key]}`]);
  // The rate limit stays on (paid on every request), raised out of the way of wrk: one address, many visitors.
  const limits = { API_RATE_LIMIT: '1000000r/s', API_RATE_BURST: '1000000' };
  const env = { ...limits, ...Object.fromEntries(ports) };
  const stack = new Stack('softy-pinko-bench', port.proxy!, env, {
    files: [`${lib.REPO_ROOT}scripts/bench/docker-compose.bench.yml`],
    tag: 'bench',
  });
  const files = [`${lib.REPO_ROOT}docker-compose.postgres.yml`];
  const postgresEnv = { ...env, ...(await lib.databaseSecretsEnv()) };
  const postgres = new Stack('softy-pinko-bench-postgres', port.postgres!, postgresEnv, { files, tag: 'bench' });
  await buildBaseline();
  return lib.withStack(stack, 'bench', async (stop) => {
    const urls = Object.fromEntries(PORTS.map((key) => [key, `http://127.0.0.1:${port[key]}`])) as Urls;
    const { t, memoryMiB, problems } = await measureAll(stack, postgres, urls, stop);
    const { markdown, failed, checks } = report(t, memoryMiB, problems);
    console.log(`\n${markdown}\n`);
    const file = `${lib.REPO_ROOT}artifacts/bench/bench-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await mkdir(`${lib.REPO_ROOT}artifacts/bench`, { recursive: true });
    await writeFile(`${file}.md`, `${markdown}\n`);
    await writeFile(`${file}.json`, `${JSON.stringify({ targets: t, checks }, null, 2)}\n`);
    log(`written to ${file}.md (raw runs in .json)`);
    return failed === 0 ? 0 : 1;
  });
}

lib.exitWith('bench', main);
