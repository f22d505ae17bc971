/**
 * `npm run bench:web [-- --runs N]`: Lighthouse's mobile and desktop presets on the page through the proxy, in
 * Chromium kept to loopback; exits 1 when a median score is below 100 or a mobile paint figure misses its limit.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Result } from 'lighthouse';
import * as lib from '../lib/stack.js';
import { CHROMIUM_BASE_FLAGS, CHROMIUM_PATH, chromiumMissing } from '../lib/chromium.js';
import { median } from './measure.js';

const OUT_DIR = join(lib.REPO_ROOT, 'artifacts', 'lighthouse');
const LIGHTHOUSE_CLI = createRequire(import.meta.url).resolve('lighthouse/cli/index.js');
/** Fewer runs would let one noisy run decide a check. */
const MIN_RUNS = 5;
/** Lighthouse sometimes cannot measure on a busy machine (NO_FCP, a protocol timeout…): retried twice. */
const ATTEMPTS = 3;
const PRESETS = { mobile: [], desktop: ['--preset=desktop'] } as const;
type Preset = keyof typeof PRESETS;
const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'] as const;
/** New empty profile per run (chrome-launcher's), headless, and no host but loopback: we measure our stack. */
const LOOPBACK_ONLY = '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"';
const CHROMIUM_FLAGS = ['--headless=new', ...CHROMIUM_BASE_FLAGS, LOOPBACK_ONLY].join(' ');

const log = (message: string): void => console.error(`[bench:web] ${message}`);
const orNa =
  (show: (value: number) => string) =>
  (value: number | null): string =>
    value === null ? 'n/a' : show(value);
const seconds = orNa((ms) => `${(ms / 1000).toFixed(2)} s`);
const count = orNa((n) => String(Math.round(n)));

const numeric = (id: string) => (lhr: Result) => {
  const value = lhr.audits[id]?.numericValue;
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
};

interface Figure {
  label: string;
  pick: (lhr: Result) => number | null;
  show: (value: number | null) => string;
  /** A check of the median: at least 100 on both presets (scores), at most `max` on mobile (paint). */
  min?: number;
  max?: number;
}

const FIGURES: Figure[] = [
  ...CATEGORIES.map((id) => ({
    label: `${id} score`,
    pick: (lhr: Result) => {
      const score = lhr.categories[id]?.score;
      return typeof score === 'number' ? Math.round(score * 100) : null;
    },
    show: count,
    min: 100,
  })),
  // On the mobile preset (a slow phone on Slow 4G) the first screen arrives at once and paints once.
  { label: 'First Contentful Paint', pick: numeric('first-contentful-paint'), show: seconds, max: 900 },
  { label: 'Largest Contentful Paint', pick: numeric('largest-contentful-paint'), show: seconds, max: 900 },
  { label: 'Render-blocking requests', pick: renderBlocking, show: count, max: 0 },
  { label: 'Total Blocking Time', pick: numeric('total-blocking-time'), show: orNa((ms) => `${Math.round(ms)} ms`) },
  { label: 'Cumulative Layout Shift', pick: numeric('cumulative-layout-shift'), show: orNa((v) => v.toFixed(3)) },
  { label: 'Bytes transferred', pick: numeric('total-byte-weight'), show: orNa((b) => `${(b / 1000).toFixed(1)} kB`) },
  { label: 'Requests', pick: requestCount, show: count },
];

/** Requests that held back the first paint; null when Lighthouse could not tell (an empty list would lie). */
function renderBlocking(lhr: Result): number | null {
  const insight = lhr.audits['render-blocking-insight'];
  if (!insight || insight.warnings?.length || insight.details?.type !== 'table') return null;
  return insight.details.items.length;
}

function requestCount(lhr: Result): number | null {
  const details = lhr.audits['network-requests']?.details;
  return details?.type === 'table' ? details.items.length : null;
}

/** The median, or null when any run has no value: a figure missing from a run is not quietly dropped. */
const medianOf = (values: Array<number | null>): number | null =>
  values.length === 0 || values.includes(null) ? null : median(values as number[]);

/** One Lighthouse run in a child process; its JSON report is written to `outputPath` and returned. */
async function lighthouse(url: string, preset: Preset, outputPath: string, stop: AbortSignal): Promise<Result> {
  const args = [LIGHTHOUSE_CLI, url, ...PRESETS[preset], `--only-categories=${CATEGORIES.join(',')}`];
  args.push(`--chrome-flags=${CHROMIUM_FLAGS}`, '--output=json', `--output-path=${outputPath}`, '--quiet');
  const child = spawn(process.execPath, args, {
    env: { ...process.env, CHROME_PATH: CHROMIUM_PATH },
    stdio: ['ignore', 'inherit', 'inherit'],
    // On Ctrl-C Lighthouse gets SIGINT, on which it closes its Chromium.
    ...{ signal: stop, killSignal: 'SIGINT' as const },
  });
  const code = await new Promise((resolve, reject) => child.once('error', reject).once('exit', resolve));
  // A run that hit a runtime error (the page did not load, …) still writes its report, and exits 1.
  if (existsSync(outputPath)) return JSON.parse(readFileSync(outputPath, 'utf8')) as Result;
  throw new Error(`Lighthouse (${preset}) wrote no report (exit ${String(code)})`);
}

/** A run, tried again while Lighthouse could not measure; the last attempt is kept whatever it says. */
async function measure(url: string, preset: Preset, outputPath: string, stop: AbortSignal): Promise<Result> {
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    try {
      const lhr = await lighthouse(url, preset, outputPath, stop);
      if (!lhr.runtimeError || attempt === ATTEMPTS) return lhr;
      problem = `${lhr.runtimeError.code}: ${lhr.runtimeError.message}`;
    } catch (error) {
      if (stop.aborted || attempt === ATTEMPTS) throw error;
      problem = (error as Error).message;
    }
    log(`${outputPath}: Lighthouse could not measure (${problem}); attempt ${attempt + 1}/${ATTEMPTS}`);
    rmSync(outputPath, { force: true });
  }
}

/** Every run of both presets, one after another: the figures of each run, by preset. */
async function runAll(url: string, runs: number, stop: AbortSignal): Promise<Record<Preset, Result[]>> {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const results: Record<Preset, Result[]> = { mobile: [], desktop: [] };
  for (const preset of Object.keys(PRESETS) as Preset[]) {
    for (let index = 1; index <= runs; index++) {
      const lhr = await measure(url, preset, join(OUT_DIR, `${preset}-run${index}.json`), stop);
      results[preset].push(lhr);
      log(`${preset} ${index}/${runs}: ${FIGURES.map((f) => `${f.label} ${f.show(f.pick(lhr))}`).join(', ')}`);
      if (lhr.runtimeError) log(`  runtime error: ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
    }
  }
  return results;
}

/** A check of one median: its line, and whether it passed (a missing figure fails). */
function checkLine(figure: Figure, preset: Preset, value: number | null): { line: string; passed: boolean } {
  const limit = figure.min ?? figure.max!;
  const passed = value !== null && (figure.min === undefined ? value <= limit : value >= limit);
  const op = figure.min === undefined ? '≤' : '≥';
  const line = `- ${preset} ${figure.label}: **${figure.show(value)}** ${op} ${figure.show(limit)}`;
  return { line: `${line} ${passed ? `✅ pass, margin ${figure.show(Math.abs(limit - value))}` : '❌ FAIL'}`, passed };
}

/** The weighted audits that cost a run points in any category. */
const lostPoints = (lhr: Result): string[] =>
  CATEGORIES.flatMap((id) => lhr.categories[id]?.auditRefs ?? [])
    .filter((ref) => ref.weight > 0 && (lhr.audits[ref.id]?.score ?? 1) < 1)
    .map((ref) => ref.id);

/** The table of medians, the checks and, when one fails, the audits that cost points. */
function report(results: Record<Preset, Result[]>, url: string, runs: number): { text: string; failed: number } {
  const medians = (preset: Preset): Array<number | null> =>
    FIGURES.map((f) => medianOf(results[preset].map((lhr) => f.pick(lhr))));
  const [mobile, desktop] = [medians('mobile'), medians('desktop')];
  const checks = FIGURES.flatMap((f, i) => [
    ...(f.min !== undefined ? [checkLine(f, 'mobile', mobile[i]!), checkLine(f, 'desktop', desktop[i]!)] : []),
    ...(f.max !== undefined ? [checkLine(f, 'mobile', mobile[i]!)] : []),
  ]);
  const failed = checks.filter((c) => !c.passed).length;
  const audits = failed ? [...new Set(Object.values(results).flat().flatMap(lostPoints))] : [];
  const lhr = results.mobile[0]!;
  const text = [
    `## Lighthouse ${lhr.lighthouseVersion}, median of ${runs} runs per preset`,
    '',
    `${url} through the proxy; ${cpus().length} cores, ${cpus()[0]?.model.trim()}; Chromium headless.`,
    '',
    '| | mobile | desktop |',
    '|---|---:|---:|',
    ...FIGURES.map((f, i) => `| ${f.label} | ${f.show(mobile[i]!)} | ${f.show(desktop[i]!)} |`),
    '',
    ...checks.map((c) => c.line),
    ...(audits.length ? ['', `Weighted audits below 1 in some run: ${audits.join(', ')}`] : []),
  ].join('\n');
  return { text, failed };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: String(MIN_RUNS) } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < MIN_RUNS) throw new Error(`--runs must be an integer ≥ ${MIN_RUNS}`);
  if (chromiumMissing()) throw new Error(chromiumMissing());
  await lib.prepareDocker('bench:web');
  const stack = new lib.Stack('softy-pinko-lighthouse', await lib.freePort(), lib.dotEnv(), { tag: 'lighthouse' });
  const url = `${stack.baseUrl}/`;
  return lib.withStack(stack, 'bench:web', async (stop) => {
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(`GET ${url} answered ${answer.status}, not 200`);
    const { text, failed } = report(await runAll(url, runs, stop), url, runs);
    writeFileSync(join(OUT_DIR, 'summary.md'), `${text}\n`);
    console.log(`\n${text}\n`);
    log(`reports: ${OUT_DIR}/{mobile,desktop}-run<N>.json, summary.md`);
    if (failed) log(`FAILED: ${failed} check(s)`);
    return failed ? 1 : 0;
  });
}

lib.exitWith('bench:web', main);
