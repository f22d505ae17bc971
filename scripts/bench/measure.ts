/**
 * wrk runs for `npm run bench`: one run, the uncounted warm-ups and the interleaved rounds, the medians and
 * paired ratios taken from them, and a target's row in the results table. Shared by bench.ts and its phases.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, run } from '../lib/stack.js';

export const CONNECTIONS = 50;
export const THREADS = 2;
export const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 7));
export const DURATION_S = Math.max(1, Number(process.env.BENCH_DURATION ?? 4));
export const WARMUP_S = Math.max(1, Number(process.env.BENCH_WARMUP ?? 5));
/** GET with wrk's summary as one JSON line; the POST rows use wrk-post.lua, which loads it. */
const WRK_REPORT = `${REPO_ROOT}scripts/bench/wrk-report.lua`;

export const log = (message: string): void => console.error(`[bench] ${message}`);

/** The parts of the bench a run measures: BENCH_ONLY=posts (or proxy), comma-separated; all when unset. */
export const PHASES = ['proxy', 'posts'] as const;
export type Phase = (typeof PHASES)[number];

export function selectedPhases(only: string | undefined): Set<Phase> {
  const names = (only ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(PHASES as readonly string[]).includes(name));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown ${unknown.join(', ')} (known: ${PHASES.join(', ')})`);
  return new Set(names.length ? (names as Phase[]) : PHASES);
}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface Target {
  label: string;
  url: string;
  /** Browser-like: the page and its assets are asked for with Accept-Encoding, so gzip_static is used. */
  headers: string[];
  /** The wrk script: what the request is (GET unless it says otherwise) and the summary line. */
  script: string;
  runs: WrkResult[];
}

export const target = (label: string, url: string, headers: string[] = [], script = WRK_REPORT): Target => ({
  label,
  url,
  headers,
  script,
  runs: [],
});

/** One wrk run; errors count failed connections and answers that were not 2xx/3xx. */
async function wrk({ url, headers, script }: Target, seconds: number): Promise<WrkResult> {
  const args = [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--timeout', '5s', '-s', script];
  for (const header of headers) args.push('-H', header);
  args.push(url);
  const { code, stdout, stderr } = await run('wrk', args, { timeoutMs: (seconds + 30) * 1000 });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || !line) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}): ${stderr || stdout}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length)) as Record<string, number>;
  return {
    rps: r.requests! / (r.duration_us! / 1e6),
    p50Ms: r.p50_us! / 1000,
    p99Ms: r.p99_us! / 1000,
    errors: r.connect_errors! + r.read_errors! + r.write_errors! + r.status_errors! + r.timeouts!,
  };
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * A ratio between two targets: the median over the rounds of a's run divided by b's run in the same round
 * (neighbours in time, so a burst of load elsewhere on the machine hits both or is outvoted).
 */
export const pairedRatio = (a: Target, b: Target, metric: 'rps' | 'p99Ms'): number =>
  median(a.runs.map((r, i) => r[metric] / b.runs[i]![metric]));

/** An uncounted run of every target in turn; `midway` runs halfway through each (memory samples). */
export async function warmUp(targets: Record<string, Target>, midway?: () => Promise<void>): Promise<void> {
  for (const [id, target] of Object.entries(targets)) {
    log(`warming up ${id} (${WARMUP_S}s) …`);
    await Promise.all([wrk(target, WARMUP_S), midway && sleep((WARMUP_S * 1000) / 2).then(midway)]);
  }
}

export const fmtMs = (n: number): string => `${n.toFixed(2)} ms`;
const fmtRps = (n: number): string => Math.round(n).toLocaleString('en-US');

/**
 * Round-robin: every round runs every target once. Odd rounds go backwards (A B C, C B A, …), so a
 * slow drift of the machine's load cancels out instead of favouring whoever runs first.
 */
export async function measure(targets: Record<string, Target>, rounds: number, stop: AbortSignal): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    const order = Object.entries(targets);
    if (round % 2 === 1) order.reverse();
    for (const [id, target] of order) {
      stop.throwIfAborted();
      const r = await wrk(target, DURATION_S);
      target.runs.push(r);
      const figures = `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${fmtMs(r.p50Ms)}  p99 ${fmtMs(r.p99Ms)}`;
      log(`round ${round + 1}/${rounds} ${id.padEnd(13)} ${figures}${r.errors ? `  ERRORS ${r.errors}` : ''}`);
    }
  }
}

/** One row of the results table: the medians over the rounds, and what they are compared with. */
export function row(n: number, x: Target, notes: string): string {
  const [rps, p50, p99] = [x.runs.map((r) => r.rps), x.runs.map((r) => r.p50Ms), x.runs.map((r) => r.p99Ms)];
  return `| ${n} | ${x.label} | ${fmtRps(median(rps))} | ${fmtMs(median(p50))} | ${fmtMs(median(p99))} | ${notes} |`;
}

/** Failed requests over every measured run of the targets. */
export const errorsIn = (targets: Target[]): number =>
  targets.reduce((sum, x) => sum + x.runs.reduce((s, r) => s + r.errors, 0), 0);
