/** wrk runs for `npm run bench`: interleaved rounds, medians, paired ratios, checks and table rows. */
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, run } from '../lib/stack.js';

export const CONNECTIONS = 50;
export const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 7));
export const DURATION_S = Math.max(1, Number(process.env.BENCH_DURATION ?? 4));
const WARMUP_S = Math.max(1, Number(process.env.BENCH_WARMUP ?? 5));
/** Prints wrk's summary as one JSON line; with BENCH_POST set, sends a contact message. */
const WRK_SCRIPT = `${REPO_ROOT}scripts/bench/wrk.lua`;

export const log = (message: string): void => console.error(`[bench] ${message}`);

export type WrkResult = Record<'rps' | 'p50Ms' | 'p99Ms' | 'errors', number>;

export interface Target {
  label: string;
  url: string;
  /** Browser-like `Accept-Encoding: gzip` for the page and asset, or a POST of a message. */
  kind: 'get' | 'gzip' | 'post';
  runs: WrkResult[];
}

export const target = (label: string, url: string, kind: Target['kind'] = 'get'): Target => ({
  label,
  url,
  kind,
  runs: [],
});

/** One wrk run; errors count failed connections and answers that were not 2xx/3xx. */
async function wrk({ url, kind }: Target, seconds: number): Promise<WrkResult> {
  const gzip = kind === 'gzip' ? ['-H', 'Accept-Encoding: gzip'] : [];
  const args = ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', WRK_SCRIPT, ...gzip, url];
  const env = kind === 'post' ? { BENCH_POST: '1' } : {};
  const { code, stdout, stderr } = await run('wrk', args, { env, timeoutMs: (seconds + 30) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}): ${stderr || stdout}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as Record<string, number>;
  const errors = r.connect! + r.read! + r.write! + r.status! + r.timeout!;
  return { rps: r.requests! / (r.duration_us! / 1e6), p50Ms: r.p50_us! / 1000, p99Ms: r.p99_us! / 1000, errors };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** The median over the rounds of a's run divided by b's in the same round: a burst elsewhere hits both. */
export const pairedRatio = (a: Target, b: Target, metric: 'rps' | 'p99Ms' = 'rps'): number =>
  median(a.runs.map((r, i) => r[metric] / b.runs[i]![metric]));

/** A warm-up of each target (`midway` halfway through), then rounds, odd ones backwards so drift favours no one. */
export async function measure(targets: Target[], stop: AbortSignal, midway?: () => Promise<void>): Promise<void> {
  for (const t of targets) {
    log(`warming up ${t.label} (${WARMUP_S}s) …`);
    await Promise.all([wrk(t, WARMUP_S), midway && sleep((WARMUP_S * 1000) / 2).then(midway)]);
  }
  for (let round = 0; round < RUNS; round += 1) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      stop.throwIfAborted();
      const r = await wrk(t, DURATION_S);
      t.runs.push(r);
      const errors = r.errors ? `  ERRORS ${r.errors}` : '';
      log(`round ${round + 1}/${RUNS} ${Math.round(r.rps).toString().padStart(6)} req/s  ${t.label}${errors}`);
    }
  }
}

const fmtMs = (n: number): string => `${n.toFixed(2)} ms`;

/** One row of the results table: the medians over the rounds, and what they are compared with. */
export function row(n: number, x: Target, notes: string): string {
  const [rps, p50, p99] = (['rps', 'p50Ms', 'p99Ms'] as const).map((m) => median(x.runs.map((r) => r[m])));
  return `| ${n} | ${x.label} | ${Math.round(rps!).toLocaleString('en-US')} | ${fmtMs(p50!)} | ${fmtMs(p99!)} | ${notes} |`;
}

/** One check: a measured value, how it must compare with its limit. */
export function check(what: string, value: number, op: '≥' | '≤' | '<', limit: number, unit = '×') {
  return { what, value, op, limit, unit };
}
export type Check = ReturnType<typeof check>;

export const passes = (c: Check): boolean =>
  c.op === '≥' ? c.value >= c.limit : c.op === '≤' ? c.value <= c.limit : c.value < c.limit;

/** Two decimals, or as many more as it takes to land on the same side of the limit: never a failing "0.80". */
export function shownValue(c: Check): string {
  for (let digits = 2; digits <= 6; digits += 1) {
    const text = c.value.toFixed(digits);
    if (passes({ ...c, value: Number(text) }) === passes(c)) return text;
  }
  return String(c.value);
}

/** The margin: how far the value is inside (+) or outside (−) its limit, in % of the limit. */
export const margin = (c: Check): string => {
  const inside = ((c.op === '≥' ? c.value - c.limit : c.limit - c.value) / c.limit) * 100;
  return `${inside >= 0 ? '+' : '−'}${Math.abs(inside).toFixed(0)} %`;
};

export const verdict = (c: Check): string =>
  `${c.what} **${shownValue(c)}${c.unit}** ${c.op} ${c.limit}${c.unit} ` +
  (passes(c) ? `✅ pass, margin ${margin(c)}` : `❌ FAIL (${margin(c)})`);

/** "vs #3: req/s **0.65×** (information)" */
export const info = (n: number, a: Target, b: Target): string =>
  `vs #${n}: req/s **${pairedRatio(a, b).toFixed(2)}×** (information)`;
