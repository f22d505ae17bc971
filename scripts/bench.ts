/**
 * `npm run bench`: how fast the proxy and the API are, measured side by side in one run.
 *
 * Brings up the stack as Compose project `softy-pinko-bench` with scripts/bench/docker-compose.bench.yml
 * layered on top (back-end and front-end published on 127.0.0.1, plus a naive nginx and a bare node:http
 * reference), warms every target up, then runs wrk (50 connections, bounded duration) against each
 * target in turn, round after round, so that whatever else the machine is doing hits every target alike.
 * Every figure is the median of the rounds, every verdict a ratio between targets of the same run.
 * The stack comes down at the end, also on failure or Ctrl-C. Exit code 1 when a check fails.
 *
 *   BENCH_RUNS=7        rounds (at least 3)
 *   BENCH_DURATION=4    seconds per wrk run
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  composeCommand,
  dockerWorks,
  ensureBaseImages,
  freePort,
  isPortFree,
  REPO_ROOT,
  run,
  Stack,
} from './lib/stack.js';
import { passes, verdict, type Check } from './bench-checks.js';

const PROJECT = 'softy-pinko-bench';
/** Images are built as softy-pinko-*:bench, so the bench never overwrites the stack suite's `e2e` images. */
const TAG = 'bench';
const OVERRIDE = `${REPO_ROOT}scripts/bench/docker-compose.bench.yml`;
const WRK_SCRIPT = `${REPO_ROOT}scripts/bench/wrk-report.lua`;
const ARTIFACTS = `${REPO_ROOT}artifacts/bench`;

const CONNECTIONS = 50;
const THREADS = 2;
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 7));
const DURATION_S = Math.max(1, Number(process.env.BENCH_DURATION ?? 4));
const WARMUP_S = 5;
/** What the back-end may hold resident under load. */
const BACK_END_RSS_LIMIT_MB = 80; // MiB, as docker stats reports

const log = (message: string): void => console.error(`[bench] ${message}`);

// ------------------------------------------------------------------------------------------------ wrk --

interface WrkResult {
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
}

interface WrkJson {
  requests: number;
  duration_us: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  connect_errors: number;
  read_errors: number;
  write_errors: number;
  status_errors: number;
  timeouts: number;
}

/** One wrk run; `status_errors` counts answers that were not 2xx/3xx. */
async function wrk(url: string, seconds: number, headers: string[]): Promise<WrkResult> {
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', WRK_SCRIPT];
  for (const header of headers) args.push('-H', header);
  args.push(url);
  const { code, stdout, stderr } = await run('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}): ${stderr || stdout}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson;
  return {
    rps: r.requests / (r.duration_us / 1e6),
    p50Ms: r.p50_us / 1000,
    p90Ms: r.p90_us / 1000,
    p99Ms: r.p99_us / 1000,
    requests: r.requests,
    errors: r.connect_errors + r.read_errors + r.write_errors + r.status_errors + r.timeouts,
  };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * A ratio between two targets: the median over the rounds of a's run divided by b's run in the same round
 * (neighbours in time, so a burst of load elsewhere on the machine hits both or is outvoted).
 */
const pairedRatio = (a: Target, b: Target, metric: 'rps' | 'p99Ms'): number =>
  median(a.runs.map((run, i) => run[metric] / b.runs[i]![metric]));

// ------------------------------------------------------------------------------------------ targets --

interface Target {
  id: string;
  label: string;
  url: string;
  /** Browser-like: the page and its assets are asked for with Accept-Encoding, so gzip_static is used. */
  headers: string[];
  runs: WrkResult[];
}

interface Figure {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  runs: number;
}

function figure(target: Target): Figure {
  return {
    rps: median(target.runs.map((r) => r.rps)),
    p50Ms: median(target.runs.map((r) => r.p50Ms)),
    p99Ms: median(target.runs.map((r) => r.p99Ms)),
    errors: target.runs.reduce((sum, r) => sum + r.errors, 0),
    runs: target.runs.length,
  };
}

/**
 * Round-robin: every round runs every target once. Odd rounds go backwards (A B C, C B A, …), so a
 * slow drift of the machine's load cancels out instead of favouring whoever runs first.
 */
async function measure(targets: Target[], rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const result = await wrk(target.url, DURATION_S, target.headers);
      target.runs.push(result);
      log(
        `round ${round + 1}/${rounds} ${target.id.padEnd(14)} ${result.rps.toFixed(0).padStart(6)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${result.errors ? `  ERRORS ${result.errors}` : ''}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------- resources --

interface Resources {
  name: string;
  service: string;
  image: string;
  imageBytes: number;
  restMiB: number;
  loadMiB: number;
  /** Peak resident set (VmHWM) of the container's main processes since they started. */
  peakRssMiB: number;
}

const UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
};

function parseBytes(text: string): number {
  const match = /^([\d.]+)\s*([A-Za-z]+)$/.exec(text.trim());
  if (!match) return Number.NaN;
  return Number(match[1]) * (UNITS[match[2]!] ?? Number.NaN);
}

/** Memory of each container right now (docker stats), in MiB, by container ID prefix. */
async function memorySample(ids: string[]): Promise<Map<string, number>> {
  const { stdout } = await run('docker', ['stats', '--no-stream', '--format', '{{.ID}}\t{{.MemUsage}}', ...ids], {
    timeoutMs: 30_000,
  });
  const sample = new Map<string, number>();
  for (const line of stdout.split('\n').filter(Boolean)) {
    const [id, usage] = line.split('\t');
    if (id && usage) sample.set(id.slice(0, 12), parseBytes(usage.split('/')[0] ?? '') / 1024 ** 2);
  }
  return sample;
}

/**
 * Sum of VmHWM (the peak resident set each reached) over the container's own processes, in MiB. This
 * counts file-backed pages too (for Node, some 45 MB of its binary, shared with every Node process on
 * the machine), which is why it is higher than what docker stats charges to the container.
 */
async function peakRss(id: string): Promise<number> {
  const { stdout } = await run('docker', ['exec', id, 'sh', '-c', 'cat /proc/[0-9]*/status 2>/dev/null'], {
    timeoutMs: 30_000,
  });
  let total = 0;
  for (const block of stdout.split(/\n(?=Name:)/)) {
    const name = /^Name:\s+(\S+)/m.exec(block)?.[1];
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(block)?.[1];
    // Leave out the sh and cat this very command runs.
    if (hwm && name !== 'sh' && name !== 'cat') total += Number(hwm) * 1024;
  }
  return total / 1024 ** 2;
}

// ---------------------------------------------------------------------------------------- the stack --

/** The ports the kernel hands out as source ports of outgoing connections (Linux's default when unreadable). */
async function ephemeralPortRange(): Promise<[number, number]> {
  const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const range = /^(\d+)\s+(\d+)$/.exec(text.trim());
  return range ? [Number(range[1]), Number(range[2])] : [32768, 60999];
}

/**
 * Two adjacent free loopback ports, "P-(P+1)": one per back-end replica. Taken from outside the ephemeral
 * range: the second port is bound only when phase 2 scales the back-end, minutes after it was picked, and
 * by then a port in that range can be the source port of one of wrk's closed connections, still in
 * TIME_WAIT, so the bind fails (EADDRINUSE; it happened in a full run).
 */
async function freePortPair(): Promise<string> {
  const [low, high] = await ephemeralPortRange();
  // Below the range when there is room (Linux's starts at 32768), else above it.
  const [from, to] = low - 2 >= 10_000 ? [10_000, low - 2] : [high + 1, 65_534];
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if ((await isPortFree(port)) && (await isPortFree(port + 1))) return `${port}-${port + 1}`;
  }
  throw new Error(`no two adjacent free ports on 127.0.0.1 between ${from} and ${to + 1}`);
}

async function hostPort(id: string, containerPort: number): Promise<number> {
  const { stdout, code, stderr } = await run('docker', ['port', id, `${containerPort}/tcp`]);
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(stdout)?.[1]);
  if (code !== 0 || !port) throw new Error(`docker port ${id} ${containerPort}: ${stderr || stdout}`);
  return port;
}

async function oneContainer(stack: Stack, service: string): Promise<string> {
  const [id] = await stack.containers(service);
  if (!id) throw new Error(`no container for ${service}`);
  return id.slice(0, 12);
}

/** Fails unless the URL answers 200 with a body that passes `check`. */
async function expectOk(
  url: string,
  check: (body: string, response: Response) => string | undefined = () => undefined,
): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await response.text();
  const problem = response.status !== 200 ? `status ${response.status}` : check(body, response);
  if (problem) throw new Error(`GET ${url}: ${problem}`);
  return body;
}

// -------------------------------------------------------------------------------------- formatting --

const fmtRps = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number): string => `${n.toFixed(2)} ms`;
const fmtMiB = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(1)} MiB` : 'n/a');
const fmtMB = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

// ------------------------------------------------------------------------------------------- main --

async function machine(compose: string[]): Promise<string> {
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const docker = (await run('docker', ['version', '--format', '{{.Server.Version}}'])).stdout.trim();
  const composeVersion = (await run(compose[0]!, [...compose.slice(1), 'version', '--short'])).stdout.trim();
  const wrkHelp = await run('wrk', ['--version']);
  const wrkVersion = /wrk (\S+)/.exec(wrkHelp.stdout + wrkHelp.stderr)?.[1] ?? '?';
  return (
    `${cpus().length} cores, ${model}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${release()}; ` +
    `Docker ${docker}, Compose ${composeVersion}, wrk ${wrkVersion}`
  );
}

async function main(): Promise<number> {
  if (!(await dockerWorks())) throw new Error('no Docker engine is reachable (`docker info` failed)');
  if ((await run('sh', ['-c', 'command -v wrk'])).code !== 0)
    throw new Error('wrk is not installed (apt-get install wrk)');
  await ensureBaseImages('bench');
  const compose = await composeCommand();
  const ports = {
    proxy: await freePort(),
    backEndPair: await freePortPair(),
    frontEnd: await freePort(),
    naive: await freePort(),
    nodeHello: await freePort(),
  };
  const stack = new Stack(
    compose,
    PROJECT,
    ports.proxy,
    {
      // The proxy's per-client API rate limit stays on (its lookup is paid on every request), but wrk is one
      // address standing in for a crowd of visitors, so the threshold is raised out of its way.
      API_RATE_LIMIT: '1000000r/s',
      API_RATE_BURST: '1000000',
      BENCH_BACK_END_PORTS: ports.backEndPair,
      BENCH_FRONT_END_PORT: String(ports.frontEnd),
      BENCH_NAIVE_PROXY_PORT: String(ports.naive),
      BENCH_NODE_HELLO_PORT: String(ports.nodeHello),
    },
    { files: [OVERRIDE], tag: TAG },
  );

  let downing: Promise<void> | undefined;
  const down = (): Promise<void> =>
    (downing ??= stack.down().catch((error: unknown) => log(`down failed: ${String(error)}`)));
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: taking the stack down`);
      void down().then(() => process.exit(130));
    });
  }

  try {
    const machineLine = await machine(compose);
    log(`bringing up ${PROJECT} (proxy on 127.0.0.1:${ports.proxy}) …`);
    await stack.execLoud(['down', '--volumes', '--remove-orphans', '--timeout', '5']); // leftovers of an aborted run
    await stack.up();

    const backEndId = await oneContainer(stack, 'back-end');
    const backEndPort = await hostPort(backEndId, 5252);
    const proxy = `http://127.0.0.1:${ports.proxy}`;
    const backEnd = `http://127.0.0.1:${backEndPort}`;
    const frontEnd = `http://127.0.0.1:${ports.frontEnd}`;
    const naive = `http://127.0.0.1:${ports.naive}`;
    const nodeHello = `http://127.0.0.1:${ports.nodeHello}`;

    // The hashed asset is whatever the page names; proves the page and asset answer the same both ways.
    const page = await expectOk(`${proxy}/`, (body) => (body.includes('dynamic-content') ? undefined : 'not our page'));
    const asset = /(?:src|href)="(\/assets\/[^"]+)"/.exec(page)?.[1];
    if (!asset) throw new Error('the page names no /assets/ file');
    await expectOk(`${frontEnd}/`, (body) => (body === page ? undefined : 'differs from the page through the proxy'));
    await expectOk(`${proxy}${asset}`);
    await expectOk(`${frontEnd}${asset}`);
    for (const url of [`${proxy}/api/hello`, `${backEnd}/api/hello`, `${naive}/api/hello`, nodeHello]) {
      await expectOk(url, (body) => (body === 'Hello, World!' ? undefined : `unexpected body ${JSON.stringify(body)}`));
    }

    // Nothing may be switched off to win: the proxied answer carries the request ID and security
    // headers, and that request ID shows up in the proxy's JSON access log and the back-end's JSON line.
    const requestId = `bench-${Date.now()}`;
    const tagged = await fetch(`${proxy}/api/hello`, { headers: { 'x-request-id': requestId } });
    const featureProblems: string[] = [];
    for (const header of ['x-request-id', 'content-security-policy', 'x-content-type-options', 'referrer-policy']) {
      if (!tagged.headers.get(header)) featureProblems.push(`no ${header} header`);
    }
    await sleep(2500); // buffered logs flush within about a second
    const logs = (await stack.exec(['logs', '--no-color', '--tail', '200', 'proxy', 'back-end'])).stdout.split('\n');
    const proxyLine = logs.find((l) => l.startsWith('proxy') && l.includes(`"request_id":"${requestId}"`));
    const backEndLine = logs.find(
      (l) => l.startsWith('back-end') && l.includes(`"reqId":"${requestId}"`) && l.includes('"msg":"request"'),
    );
    if (!proxyLine) featureProblems.push('no proxy access-log line for the request');
    if (!backEndLine) featureProblems.push('no back-end JSON log line for the request');

    const ids = Object.fromEntries(
      await Promise.all(
        ['proxy', 'back-end', 'front-end', 'naive-proxy', 'node-hello'].map(
          async (s) => [s, await oneContainer(stack, s)] as const,
        ),
      ),
    );
    const atRest = await memorySample(Object.values(ids));
    const underLoad = new Map<string, number>();
    const noteLoad = (sample: Map<string, number>): void => {
      for (const [id, mib] of sample) underLoad.set(id, Math.max(underLoad.get(id) ?? 0, mib));
    };

    const gzip = ['Accept-Encoding: gzip'];
    const t = (id: string, label: string, url: string, headers: string[] = []): Target => ({
      id,
      label,
      url,
      headers,
      runs: [],
    });
    const targets = {
      nodeHello: t('node-hello', 'bare `node:http` hello-world, direct', `${nodeHello}/api/hello`),
      apiDirect: t('api-direct', '`GET /api/hello` back-end direct', `${backEnd}/api/hello`),
      apiProxy: t('api-proxy', '`GET /api/hello` through our proxy', `${proxy}/api/hello`),
      apiNaive: t('api-naive', '`GET /api/hello` through the naive nginx', `${naive}/api/hello`),
      pageProxy: t('page-proxy', '`GET /` through our proxy', `${proxy}/`, gzip),
      pageDirect: t('page-direct', '`GET /` front-end direct', `${frontEnd}/`, gzip),
      assetProxy: t('asset-proxy', `\`GET ${asset}\` through our proxy`, `${proxy}${asset}`, gzip),
      assetDirect: t('asset-direct', `\`GET ${asset}\` front-end direct`, `${frontEnd}${asset}`, gzip),
    };
    // Neighbours in this order are the pairs that get compared.
    const phase1 = [
      targets.nodeHello,
      targets.apiDirect,
      targets.apiProxy,
      targets.apiNaive,
      targets.pageProxy,
      targets.pageDirect,
      targets.assetProxy,
      targets.assetDirect,
    ];

    // Warm-up: one run per target, not counted; memory under load is sampled in the middle of it.
    for (const target of phase1) {
      log(`warming up ${target.id} (${WARMUP_S}s) …`);
      const [, sample] = await Promise.all([
        wrk(target.url, WARMUP_S, target.headers),
        sleep(2000).then(() => memorySample(Object.values(ids))),
      ]);
      noteLoad(sample);
    }
    await measure(phase1, RUNS);

    // Two back-end replicas behind the proxy, against the one published replica measured alongside.
    log('scaling the back-end to 2 replicas …');
    await stack.scaleBackEnd(2);
    await stack.waitHealthy();
    await sleep(6000); // the proxy re-resolves back-end every 5 s (resolver valid=5s)
    const servedBy = new Set<string>();
    for (let i = 0; i < 40; i += 1) {
      const response = await fetch(`${proxy}/api/hello`);
      await response.text();
      servedBy.add(response.headers.get('x-served-by') ?? '?');
    }
    const backEndIds = (await stack.containers('back-end')).map((id) => id.slice(0, 12));
    if (servedBy.size < 2) featureProblems.push(`2 replicas but only ${servedBy.size} answered through the proxy`);
    const scaled = {
      apiProxy2: t('api-proxy-x2', '`GET /api/hello` through our proxy, **2 back-end replicas**', `${proxy}/api/hello`),
      apiDirect2: t(
        'api-direct-p2',
        '`GET /api/hello` back-end direct (1 replica, same phase)',
        `${backEnd}/api/hello`,
      ),
    };
    const phase2 = [scaled.apiProxy2, scaled.apiDirect2];
    for (const target of phase2) {
      log(`warming up ${target.id} (${WARMUP_S}s) …`);
      const [, sample] = await Promise.all([
        wrk(target.url, WARMUP_S, target.headers),
        sleep(2000).then(() => memorySample([...Object.values(ids), ...backEndIds])),
      ]);
      noteLoad(sample);
    }
    await measure(phase2, RUNS);

    // --------------------------------------------------------------------------------- report --
    const f = Object.fromEntries(Object.entries({ ...targets, ...scaled }).map(([k, v]) => [k, figure(v)])) as Record<
      keyof typeof targets | keyof typeof scaled,
      Figure
    >;
    const resources: Resources[] = [];
    const services = [
      ...Object.entries(ids),
      ...backEndIds.filter((id) => id !== ids['back-end']).map((id) => ['back-end', id] as const),
    ];
    for (const [service, id] of services) {
      const image = await stack.inspect<string>(id, '.Config.Image');
      const imageBytes = Number(
        (await run('docker', ['image', 'inspect', '--format', '{{.Size}}', image])).stdout.trim(),
      );
      const name = (await stack.inspect<string>(id, '.Name')).replace(/^\//, '');
      resources.push({
        name,
        service,
        image,
        imageBytes,
        restMiB: atRest.get(id) ?? Number.NaN,
        loadMiB: underLoad.get(id) ?? Number.NaN,
        peakRssMiB: await peakRss(id),
      });
    }
    const hygiene = await imageHygiene([
      ...new Set(resources.filter((r) => ['proxy', 'back-end', 'front-end'].includes(r.service)).map((r) => r.image)),
    ]);

    // What the container is charged for (docker stats: its anonymous memory and page cache, what mem_limit
    // enforces), sampled under load, over all replicas.
    const backEndPeak = Math.max(...resources.filter((r) => r.service === 'back-end').map((r) => r.loadMiB));
    const checks = {
      api: {
        what: 'req/s vs back-end direct',
        value: pairedRatio(targets.apiProxy, targets.apiDirect, 'rps'),
        op: '≥',
        limit: 0.6,
        unit: '×',
      },
      apiNaive: {
        what: 'req/s vs naive nginx',
        value: pairedRatio(targets.apiProxy, targets.apiNaive, 'rps'),
        op: '≥',
        limit: 2,
        unit: '×',
      },
      apiP99: {
        what: 'p99 vs back-end direct',
        value: pairedRatio(targets.apiProxy, targets.apiDirect, 'p99Ms'),
        op: '≤',
        limit: 2.5,
        unit: '×',
      },
      page: {
        what: 'req/s vs front-end direct',
        value: pairedRatio(targets.pageProxy, targets.pageDirect, 'rps'),
        op: '≥',
        limit: 0.8,
        unit: '×',
      },
      pageP99: {
        what: 'p99 vs front-end direct',
        value: pairedRatio(targets.pageProxy, targets.pageDirect, 'p99Ms'),
        op: '≤',
        limit: 2.5,
        unit: '×',
      },
      asset: {
        what: 'req/s vs front-end direct',
        value: pairedRatio(targets.assetProxy, targets.assetDirect, 'rps'),
        op: '≥',
        limit: 0.8,
        unit: '×',
      },
      assetP99: {
        what: 'p99 vs front-end direct',
        value: pairedRatio(targets.assetProxy, targets.assetDirect, 'p99Ms'),
        op: '≤',
        limit: 2.5,
        unit: '×',
      },
      backEnd: {
        what: 'req/s vs bare node:http',
        value: pairedRatio(targets.apiDirect, targets.nodeHello, 'rps'),
        op: '≥',
        limit: 0.85,
        unit: '×',
      },
      rss: {
        what: 'back-end memory under load (docker stats)',
        value: backEndPeak,
        op: '<',
        limit: BACK_END_RSS_LIMIT_MB,
        unit: ' MiB',
      },
    } satisfies Record<string, Check>;
    const errorRuns = Object.values(f).reduce((sum, x) => sum + x.errors, 0);

    const row = (n: string, label: string, x: Figure, notes: string): string =>
      `| ${n} | ${label} | ${fmtRps(x.rps)} | ${fmtMs(x.p50Ms)} | ${fmtMs(x.p99Ms)} | ${notes} |`;
    const lines = [
      `### Benchmark — ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`,
      '',
      `Machine: ${machineLine}.`,
      `Load: wrk, ${CONNECTIONS} connections, ${THREADS} threads, ${DURATION_S}s per run, median of ${RUNS} runs per target, targets interleaved round-robin; ` +
        `every target reached the same way — wrk on the host → a port published on 127.0.0.1 (Docker's port forwarding included for all). ` +
        `Page and asset requested with \`Accept-Encoding: gzip\`. req/s, p50 and p99 are medians over the runs; each ratio is the median of the ` +
        `per-round ratios of the two targets (run next to each other), so it need not equal the quotient of the medians.`,
      '',
      '| # | target (phase 1: 1 back-end replica) | req/s | p50 | p99 | ratios (checks) |',
      '|---|---|---:|---:|---:|---|',
      row('1', targets.nodeHello.label, f.nodeHello, 'reference'),
      row('2', targets.apiDirect.label, f.apiDirect, `vs #1: ${verdict(checks.backEnd)}`),
      row('3', targets.apiNaive.label, f.apiNaive, 'reference: stock nginx.conf + two bare `proxy_pass`'),
      row(
        '4',
        targets.apiProxy.label,
        f.apiProxy,
        `vs #2: ${verdict(checks.api)}<br>vs #3: ${verdict(checks.apiNaive)}<br>vs #2: ${verdict(checks.apiP99)}`,
      ),
      row('5', targets.pageDirect.label, f.pageDirect, 'reference'),
      row(
        '6',
        targets.pageProxy.label,
        f.pageProxy,
        `vs #5: ${verdict(checks.page)}<br>vs #5: ${verdict(checks.pageP99)}`,
      ),
      row('7', targets.assetDirect.label, f.assetDirect, 'reference'),
      row(
        '8',
        targets.assetProxy.label,
        f.assetProxy,
        `vs #7: ${verdict(checks.asset)}<br>vs #7: ${verdict(checks.assetP99)}`,
      ),
      '| | **phase 2: back-end scaled to 2 replicas** | | | | |',
      row('9', scaled.apiDirect2.label, f.apiDirect2, 'reference'),
      row(
        '10',
        scaled.apiProxy2.label,
        f.apiProxy2,
        `vs #9: req/s **${pairedRatio(scaled.apiProxy2, scaled.apiDirect2, 'rps').toFixed(2)}×**, p99 **${pairedRatio(scaled.apiProxy2, scaled.apiDirect2, 'p99Ms').toFixed(2)}×** (no target; answered by ${servedBy.size} replicas)`,
      ),
      '',
      '| container | image | image size | memory at rest | memory under load (max sampled) | peak resident (VmHWM) |',
      '|---|---|---:|---:|---:|---:|',
      ...resources.map(
        (r) =>
          `| ${r.name} | \`${r.image}\` | ${fmtMB(r.imageBytes)} | ${fmtMiB(r.restMiB)} | ${fmtMiB(r.loadMiB)} | ${fmtMiB(r.peakRssMiB)} |`,
      ),
      '',
      `Back-end under load: ${verdict(checks.rss)} (largest sample over all replicas; VmHWM above also counts the ~45 MB of the node binary's file-backed pages, shared with every Node process).`,
      `Features on during the run: ${featureProblems.length === 0 ? 'X-Request-ID and security headers in the answer, the request ID in the proxy’s JSON access log and in the back-end’s JSON request line ✅' : `❌ ${featureProblems.join('; ')}`}.`,
      `Failed requests during measured runs: ${errorRuns === 0 ? '0 ✅' : `${errorRuns} ❌`}.`,
      `Runtime images (${hygiene.images.join(', ')}): ${hygiene.problems.length === 0 ? 'no compiler, no dev dependency, no source map ✅' : `❌ ${hygiene.problems.join('; ')}`}.`,
    ];
    const failed = [
      ...Object.values(checks)
        .filter((c) => !passes(c))
        .map((c) => c.what),
      ...featureProblems,
      ...hygiene.problems,
      ...(errorRuns ? ['errors'] : []),
    ];
    lines.push('', failed.length === 0 ? '**All checks pass.**' : `**${failed.length} check(s) failed.**`);
    const markdown = lines.join('\n');
    console.log(`\n${markdown}\n`);

    await mkdir(ARTIFACTS, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const raw = JSON.stringify(
      {
        machine: machineLine,
        runs: RUNS,
        durationS: DURATION_S,
        connections: CONNECTIONS,
        targets: { ...targets, ...scaled },
        checks,
        resources,
        featureProblems,
        hygiene,
      },
      null,
      2,
    );
    await writeFile(`${ARTIFACTS}/bench-${stamp}.md`, `${markdown}\n`);
    await writeFile(`${ARTIFACTS}/bench-${stamp}.json`, `${raw}\n`);
    await writeFile(`${ARTIFACTS}/latest.md`, `${markdown}\n`);
    log(`written to artifacts/bench/bench-${stamp}.md (and latest.md, raw runs in .json)`);
    return failed.length === 0 ? 0 : 1;
  } finally {
    log('taking the stack down …');
    await down();
  }
}

/** Runtime images carry no compiler, no dev dependency and no source map. */
async function imageHygiene(images: string[]): Promise<{ images: string[]; problems: string[] }> {
  const script = [
    'for c in gcc cc c++ g++ clang make tsc tsx esbuild vite; do command -v "$c" >/dev/null 2>&1 && echo "compiler: $c"; done',
    'for d in /app /usr/share/nginx/html /etc/nginx; do [ -d "$d" ] && find "$d" -name "*.map" | sed "s/^/source map: /"; done',
    'for p in typescript tsx vitest vite esbuild happy-dom @types; do [ -e "/app/node_modules/$p" ] && echo "dev dependency: $p"; done',
    'true',
  ].join('; ');
  const problems: string[] = [];
  for (const image of images) {
    const { stdout, code, stderr } = await run('docker', [
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      image,
      '-c',
      script,
    ]);
    if (code !== 0) problems.push(`${image}: check failed (${stderr.trim()})`);
    for (const line of stdout.split('\n').filter(Boolean)) problems.push(`${image}: ${line}`);
  }
  return { images, problems };
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[bench] failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
