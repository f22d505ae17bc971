/**
 * `npm run bench:web` — Lighthouse against the whole stack, in containers, through the proxy.
 *
 * 1. Brings the stack up with Compose as its own project (`softy-pinko-lighthouse`) on a free port,
 *    building the base images offline first when no registry has them (like the stack suite).
 * 2. Runs the Lighthouse CLI in Debian's Chromium (`/usr/bin/chromium`, or CHROMIUM_PATH), which can
 *    reach nothing but loopback, with a fresh profile per run: the mobile preset (Lighthouse's default)
 *    and the desktop preset (core/config/desktop-config.js), 5 runs each (`--runs N`, at least 5).
 * 3. Prints one markdown table of the medians (scores, FCP, LCP, TBT, render-blocking requests, bytes)
 *    beside the original template's figures, and writes it and every run's JSON report to artifacts/lighthouse/.
 * 4. Exits non-zero when any median score is below 100 (naming the audits that lost points), or when a
 *    paint target of the mobile preset is missed (PAINT_TARGETS).
 *
 * The stack is taken down at the end, on success, failure and Ctrl-C alike (withStack in scripts/lib/stack.ts).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Result } from 'lighthouse';
import {
  REPO_ROOT,
  Stack,
  dockerWorks,
  dotEnv,
  ensureBaseImages,
  freePort,
  requireCompose,
  run,
  withStack,
} from '../lib/stack.js';
import { CHROMIUM_BASE_FLAGS, CHROMIUM_PATH, chromiumMissing } from '../lib/chromium.js';

const PROJECT = 'softy-pinko-lighthouse';
const OUT_DIR = join(REPO_ROOT, 'artifacts', 'lighthouse');
const require = createRequire(import.meta.url);
const LIGHTHOUSE_CLI = require.resolve('lighthouse/cli/index.js');
const LIGHTHOUSE_VERSION = (require('lighthouse/package.json') as { version: string }).version;

/**
 * Headless, and no way to any host but loopback: the numbers measure our stack and nothing else.
 * The Lighthouse CLI parses this string itself (quotes group a value) and hands Chromium one argument
 * per flag. Each run's Chromium also gets a new, empty --user-data-dir: chrome-launcher creates one
 * per launch (lighthouse.XXXXXX in the temp dir) and deletes it when the run ends.
 */
const CHROMIUM_FLAGS = [
  '--headless=new',
  ...CHROMIUM_BASE_FLAGS,
  '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"',
].join(' ');

const CATEGORIES = ['performance', 'accessibility', 'best-practices', 'seo'] as const;
type Category = (typeof CATEGORIES)[number];
const CATEGORY_NAMES: Record<Category, string> = {
  performance: 'Performance',
  accessibility: 'Accessibility',
  'best-practices': 'Best practices',
  seo: 'SEO',
};

const PRESETS = ['mobile', 'desktop'] as const;
type Preset = (typeof PRESETS)[number];
/** Mobile is Lighthouse's default config; `--preset=desktop` loads core/config/desktop-config.js. */
const PRESET_FLAGS: Record<Preset, string[]> = { mobile: [], desktop: ['--preset=desktop'] };

/** The original free template this page replaced, measured once with the mobile preset. */
const TEMPLATE = {
  scores: { performance: 59, accessibility: 84, 'best-practices': 75, seo: 82 } satisfies Record<Category, number>,
  bytes: '1.94 MB',
  requests: 30,
  lcp: '9.2 s',
};

/** The medians runs are summarised by: fewer runs let one noisy run decide a check. */
const MIN_RUNS = 5;

/** The figures we keep from one Lighthouse run. Scores are 0–100; null when Lighthouse could not score. */
interface Figures {
  scores: Record<Category, number | null>;
  fcpMs: number | null;
  lcpMs: number | null;
  cls: number | null;
  tbtMs: number | null;
  bytes: number | null;
  requests: number | null;
  /** Requests that held back the first paint (Lighthouse's render-blocking insight, before any savings cut-off). */
  renderBlocking: number | null;
}

/**
 * What the page must reach on the mobile preset (a slow phone on Slow 4G), median of the runs: everything
 * the first screen needs arrives in the first round trips, and its largest paint is its first.
 */
const PAINT_TARGETS = [
  { what: 'First Contentful Paint', pick: (f: Figures) => f.fcpMs, limit: 900, show: (v: number) => fmt.seconds(v) },
  { what: 'Largest Contentful Paint', pick: (f: Figures) => f.lcpMs, limit: 900, show: (v: number) => fmt.seconds(v) },
  {
    what: 'Render-blocking requests',
    pick: (f: Figures) => f.renderBlocking,
    limit: 0,
    show: (v: number) => fmt.count(v),
  },
];

interface Run {
  preset: Preset;
  index: number;
  lhr: Result;
  figures: Figures;
}

function log(message: string): void {
  console.log(`[bench:web] ${message}`);
}

// -------------------------------------------------------------------------------------- running --

/** One Lighthouse run in a child process; its JSON report is written to `outputPath` and returned. */
async function runLighthouse(url: string, preset: Preset, outputPath: string, stop: AbortSignal): Promise<Result> {
  const args = [
    LIGHTHOUSE_CLI,
    url,
    ...PRESET_FLAGS[preset],
    `--only-categories=${CATEGORIES.join(',')}`,
    `--chrome-flags=${CHROMIUM_FLAGS}`,
    '--output=json',
    `--output-path=${outputPath}`,
    '--quiet',
  ];
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, CHROME_PATH: CHROMIUM_PATH },
    stdio: ['ignore', 'inherit', 'inherit'],
    // On Ctrl-C Lighthouse gets SIGINT, on which it closes its Chromium.
    signal: stop,
    killSignal: 'SIGINT',
  });
  const [code, signal] = (await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (...result) => resolve(result));
  })) as [number | null, NodeJS.Signals | null];
  // A run that hit a runtime error (page did not load, …) still writes its report, and exits 1.
  if (existsSync(outputPath)) return JSON.parse(readFileSync(outputPath, 'utf8')) as Result;
  throw new Error(`Lighthouse (${preset}) wrote no report (${signal ?? `exit ${code}`})`);
}

/**
 * Lighthouse sometimes fails to measure at all on a busy machine (NO_NAVSTART, NO_FCP, a protocol
 * timeout…) and says "run Lighthouse again". Such a run is retried, twice at most; a run that still
 * fails is kept, and its missing scores fail the benchmark.
 */
const ATTEMPTS_PER_RUN = 3;

async function measure(url: string, preset: Preset, outputPath: string, stop: AbortSignal): Promise<Result> {
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    try {
      const lhr = await runLighthouse(url, preset, outputPath, stop);
      if (!lhr.runtimeError || attempt === ATTEMPTS_PER_RUN) return lhr;
      problem = `${lhr.runtimeError.code}: ${lhr.runtimeError.message}`;
    } catch (error) {
      if (stop.aborted || attempt === ATTEMPTS_PER_RUN) throw error;
      problem = (error as Error).message;
    }
    stop.throwIfAborted();
    console.error(
      `[bench:web] ${outputPath}: Lighthouse could not measure (${problem}); ` +
        `again (attempt ${attempt + 1}/${ATTEMPTS_PER_RUN})`,
    );
    rmSync(outputPath, { force: true });
  }
}

async function chromiumVersion(): Promise<string> {
  const { stdout } = await run(CHROMIUM_PATH, ['--version'], { timeoutMs: 20_000 });
  return /\d+\.\d+\.\d+\.\d+/.exec(stdout)?.[0] ?? 'version unknown';
}

function numericValue(lhr: Result, auditId: string): number | null {
  const value = lhr.audits[auditId]?.numericValue;
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function figuresOf(lhr: Result): Figures {
  const scores = Object.fromEntries(
    CATEGORIES.map((id) => {
      const score = lhr.categories[id]?.score;
      return [id, typeof score === 'number' ? Math.round(score * 100) : null];
    }),
  ) as Record<Category, number | null>;
  const requests = lhr.audits['network-requests']?.details;
  return {
    scores,
    fcpMs: numericValue(lhr, 'first-contentful-paint'),
    lcpMs: numericValue(lhr, 'largest-contentful-paint'),
    cls: numericValue(lhr, 'cumulative-layout-shift'),
    tbtMs: numericValue(lhr, 'total-blocking-time'),
    // Transfer sizes (headers and compression included) of every request the page made.
    bytes: numericValue(lhr, 'total-byte-weight'),
    requests: requests?.type === 'table' ? requests.items.length : null,
    renderBlocking: renderBlockingRequests(lhr),
  };
}

/** How many requests the trace shows blocking the first paint; null when Lighthouse could not tell. */
function renderBlockingRequests(lhr: Result): number | null {
  const insight = lhr.audits['render-blocking-insight'];
  // A warning (no first paint in the trace, …) means the list was not made: an empty one would lie.
  if (!insight || insight.warnings?.length || insight.details?.type !== 'table') return null;
  return insight.details.items.length;
}

/** The median, or null when any run has no value: a figure missing from a run is not quietly dropped. */
function median(values: Array<number | null>): number | null {
  if (values.length === 0 || values.some((value) => value === null)) return null;
  const sorted = (values as number[]).slice().sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function medianFigures(runs: Run[]): Figures {
  const of = (pick: (figures: Figures) => number | null): number | null => median(runs.map((run) => pick(run.figures)));
  return {
    scores: Object.fromEntries(CATEGORIES.map((id) => [id, of((figures) => figures.scores[id])])) as Record<
      Category,
      number | null
    >,
    fcpMs: of((figures) => figures.fcpMs),
    lcpMs: of((figures) => figures.lcpMs),
    cls: of((figures) => figures.cls),
    tbtMs: of((figures) => figures.tbtMs),
    bytes: of((figures) => figures.bytes),
    requests: of((figures) => figures.requests),
    renderBlocking: of((figures) => figures.renderBlocking),
  };
}

// ------------------------------------------------------------------------------------ reporting --

const DASH = '—';
const fmt = {
  score: (value: number | null): string => (value === null ? 'n/a' : String(Math.round(value))),
  seconds: (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`),
  ms: (ms: number | null): string => (ms === null ? 'n/a' : `${Math.round(ms)} ms`),
  cls: (value: number | null): string => (value === null ? 'n/a' : value.toFixed(3)),
  bytes: (bytes: number | null): string => (bytes === null ? 'n/a' : `${(bytes / 1000).toFixed(1)} kB`),
  count: (value: number | null): string => (value === null ? 'n/a' : String(Math.round(value))),
};

/** "simulate throttling, 150 ms RTT, 1.6 Mbit/s, 4× CPU slowdown, 412×823 screen" from a run's settings. */
function conditions(lhr: Result): string {
  const { throttling, throttlingMethod, screenEmulation } = lhr.configSettings;
  const parts = [`${throttlingMethod} throttling`];
  if (throttling.rttMs !== undefined) parts.push(`${throttling.rttMs} ms RTT`);
  if (throttling.throughputKbps !== undefined) parts.push(`${(throttling.throughputKbps / 1024).toFixed(1)} Mbit/s`);
  if (throttling.cpuSlowdownMultiplier !== undefined) parts.push(`${throttling.cpuSlowdownMultiplier}× CPU slowdown`);
  if (!screenEmulation.disabled) parts.push(`${screenEmulation.width}×${screenEmulation.height} screen`);
  return parts.join(', ');
}

const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;

/** The medians of both presets beside the template's figures, one row a figure. */
function figureRows(medians: Record<Preset, Figures>, runsPerPreset: number): string[] {
  const both = (label: string, template: string, shown: (figures: Figures) => string): string =>
    row([label, template, shown(medians.mobile), shown(medians.desktop)]);
  const columns = ['mobile', 'desktop'].map((preset) => `Softy Pinko, ${preset} (median of ${runsPerPreset})`);
  return [
    row(['', 'Original template (mobile)', ...columns]),
    row(['---', '---:', '---:', '---:']),
    ...CATEGORIES.map((id) => both(CATEGORY_NAMES[id], String(TEMPLATE.scores[id]), (f) => fmt.score(f.scores[id]))),
    both('First Contentful Paint', DASH, (f) => fmt.seconds(f.fcpMs)),
    both('Largest Contentful Paint', TEMPLATE.lcp, (f) => fmt.seconds(f.lcpMs)),
    both('Cumulative Layout Shift', DASH, (f) => fmt.cls(f.cls)),
    both('Total Blocking Time', DASH, (f) => fmt.ms(f.tbtMs)),
    both('Render-blocking requests', DASH, (f) => fmt.count(f.renderBlocking)),
    both('Bytes transferred', TEMPLATE.bytes, (f) => fmt.bytes(f.bytes)),
    both('Requests', String(TEMPLATE.requests), (f) => fmt.count(f.requests)),
  ];
}

/** Where and how the runs were made: machine, versions, throttling, and every run's scores. */
function footnotes(runs: Run[], url: string, chromium: string): string[] {
  const cpus = os.cpus();
  const benchmarks = runs.map((run) => run.lhr.environment.benchmarkIndex);
  const benchmark = median(benchmarks);
  const [low, high] = [Math.min(...benchmarks), Math.max(...benchmarks)].map(Math.round);
  const index = benchmark === null ? '' : `; Lighthouse benchmarkIndex ${Math.round(benchmark)} (${low}–${high})`;
  const memory = `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
  const machine = `${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${memory}`;
  const perPreset = PRESETS.map((preset) => {
    const presetRuns = runs.filter((run) => run.preset === preset);
    const scores = (id: Category): string => presetRuns.map((run) => fmt.score(run.figures.scores[id])).join('/');
    const perRun = CATEGORIES.map((id) => `${CATEGORY_NAMES[id].toLowerCase()} ${scores(id)}`);
    const settings = presetRuns[0] ? conditions(presetRuns[0].lhr) : 'n/a';
    return `- ${preset}: ${settings}; scores per run: ${perRun.join(', ')}`;
  });
  return [
    `- Machine: ${machine} RAM, ${os.type()} ${os.release()}${index}`,
    `- Lighthouse ${runs[0]!.lhr.lighthouseVersion}, Chromium ${chromium} (headless, ${CHROMIUM_PATH}), ` +
      `Node ${process.version}`,
    `- ${url} through the proxy, Compose project \`${PROJECT}\`; categories ${CATEGORIES.join(', ')}`,
    ...perPreset,
    `- ${DASH}: not quoted for the template. Scores and figures are medians, each taken on its own.`,
  ];
}

function table(medians: Record<Preset, Figures>, runs: Run[], url: string, runsPerPreset: number, chromium: string) {
  const lines = ['## Lighthouse: Softy Pinko vs the original template', '', ...figureRows(medians, runsPerPreset)];
  return `${[...lines, '', ...footnotes(runs, url, chromium)].join('\n')}\n`;
}

interface LostPoints {
  preset: Preset;
  category: Category;
  median: number | null;
  audits: Array<{ id: string; title: string; weight: number; runs: string[] }>;
}

/** For every category whose median is below 100: the weighted audits that scored below 1, per run. */
function lostPoints(runs: Run[], medians: Record<Preset, Figures>): LostPoints[] {
  const found: LostPoints[] = [];
  for (const preset of PRESETS) {
    const presetRuns = runs.filter((run) => run.preset === preset);
    for (const category of CATEGORIES) {
      const medianScore = medians[preset].scores[category];
      if (medianScore !== null && medianScore >= 100) continue;
      const audits = new Map<string, LostPoints['audits'][number]>();
      for (const run of presetRuns) {
        for (const ref of run.lhr.categories[category]?.auditRefs ?? []) {
          const audit = run.lhr.audits[ref.id];
          if (!audit || ref.weight <= 0 || audit.score === null || audit.score >= 1) continue;
          const entry = audits.get(ref.id) ?? { id: ref.id, title: audit.title, weight: ref.weight, runs: [] };
          const detail = audit.displayValue ? `, ${audit.displayValue}` : '';
          entry.runs.push(`run ${run.index}: score ${audit.score.toFixed(2)}${detail}`);
          audits.set(ref.id, entry);
        }
      }
      found.push({
        preset,
        category,
        median: medianScore,
        audits: [...audits.values()].sort((a, b) => b.weight - a.weight),
      });
    }
  }
  return found;
}

/** Lighthouse's own threshold: below it, it warns that the CPU is slower than its throttling assumes. */
const SLOW_CPU_BENCHMARK_INDEX = 1000;

function lostPointsText(lost: LostPoints[], runs: Run[], runsPerPreset: number): string {
  const lines: string[] = [];
  for (const { preset, category, median: medianScore, audits } of lost) {
    lines.push(`- ${preset} · ${CATEGORY_NAMES[category]}: median ${fmt.score(medianScore)}`);
    if (audits.length === 0)
      lines.push(
        '  - no weighted audit scored below 1 (Lighthouse could not score the category: see the runtime errors above)',
      );
    for (const audit of audits) {
      lines.push(
        `  - \`${audit.id}\` — ${audit.title} (weight ${audit.weight}; ` +
          `lost points in ${audit.runs.length}/${runsPerPreset} runs: ${audit.runs.join('; ')})`,
      );
    }
  }
  const slowRuns = runs.filter((run) => run.lhr.environment.benchmarkIndex < SLOW_CPU_BENCHMARK_INDEX).length;
  if (lost.some((entry) => entry.category === 'performance') && slowRuns > 0) {
    lines.push(
      '',
      `Note: in ${slowRuns}/${runs.length} runs Lighthouse's benchmarkIndex was below ` +
        `${SLOW_CPU_BENCHMARK_INDEX} (a busy or slow CPU). Timing metrics (TBT above all) grow with CPU load: ` +
        'rerun on an idle machine, or with more `--runs`, before chasing them.',
    );
  }
  return `${lines.join('\n')}\n`;
}

// ----------------------------------------------------------------------------------------- main --

/** Every run of every preset, one after another; each run's JSON report lands in OUT_DIR. */
async function runAll(url: string, runsPerPreset: number, stop: AbortSignal): Promise<Run[]> {
  rmSync(OUT_DIR, { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const runs: Run[] = [];
  for (const preset of PRESETS) {
    for (let index = 1; index <= runsPerPreset; index++) {
      const lhr = await measure(url, preset, join(OUT_DIR, `${preset}-run${index}.json`), stop);
      const figures = figuresOf(lhr);
      runs.push({ preset, index, lhr, figures });
      const scores = CATEGORIES.map((id) => `${id} ${fmt.score(figures.scores[id])}`).join(', ');
      const timings =
        `FCP ${fmt.seconds(figures.fcpMs)}, LCP ${fmt.seconds(figures.lcpMs)}, TBT ${fmt.ms(figures.tbtMs)}, ` +
        `CLS ${fmt.cls(figures.cls)}, render-blocking ${fmt.count(figures.renderBlocking)}`;
      log(`${preset} run ${index}/${runsPerPreset}: ${scores}; ${timings}`);
      if (lhr.runtimeError)
        console.error(`[bench:web]   runtime error: ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
      for (const warning of lhr.runWarnings) console.error(`[bench:web]   warning: ${warning}`);
    }
  }
  return runs;
}

/** PAINT_TARGETS against the mobile medians: one line each, and whether it passed (a missing figure fails). */
function paintChecks(mobile: Figures): Array<{ line: string; passed: boolean }> {
  return PAINT_TARGETS.map(({ what, pick, limit, show }) => {
    const value = pick(mobile);
    const passed = value !== null && value <= limit;
    const shown = value === null ? 'n/a' : show(value);
    return { line: `- mobile ${what}: **${shown}** ≤ ${show(limit)} ${passed ? '✅ pass' : '❌ FAIL'}`, passed };
  });
}

/** Prints and writes the summary; the exit code: 1 when a median score is below 100 or a paint target is missed. */
function report(runs: Run[], url: string, runsPerPreset: number, chromium: string): number {
  const medians = {
    mobile: medianFigures(runs.filter((run) => run.preset === 'mobile')),
    desktop: medianFigures(runs.filter((run) => run.preset === 'desktop')),
  };
  const checks = paintChecks(medians.mobile);
  const missed = checks.filter((c) => !c.passed).length;
  const checkText = `\n### Checks (medians of the mobile preset)\n\n${checks.map((c) => c.line).join('\n')}\n`;
  const summary = table(medians, runs, url, runsPerPreset, chromium) + checkText;
  const lost = lostPoints(runs, medians);
  const failing = lost.length
    ? `\n### Scores below 100: audits that lost points\n\n${lostPointsText(lost, runs, runsPerPreset)}`
    : '';
  writeFileSync(join(OUT_DIR, 'summary.md'), summary + failing);
  const perRun = runs.map(({ preset, index, figures }) => ({ preset, index, figures }));
  const paint = checks.map((c) => c.line);
  const json = { url, runsPerPreset, medians, template: TEMPLATE, runs: perRun, lostPoints: lost, checks: paint };
  writeFileSync(join(OUT_DIR, 'summary.json'), `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\n${summary}`);
  log(`reports: ${OUT_DIR}/{mobile,desktop}-run<N>.json, summary.md, summary.json`);
  if (lost.length === 0 && missed === 0) {
    log('every median score is 100 and every paint target is met');
    return 0;
  }
  if (lost.length) console.error(failing);
  const reasons = [
    lost.length ? `${lost.length} median score(s) below 100` : '',
    missed ? `${missed} paint target(s) missed` : '',
  ];
  console.error(`[bench:web] FAILED: ${reasons.filter(Boolean).join(', ')}`);
  return 1;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: String(MIN_RUNS) } } });
  const runsPerPreset = Number(values.runs);
  if (!Number.isInteger(runsPerPreset) || runsPerPreset < MIN_RUNS)
    throw new Error(`--runs must be an integer of at least ${MIN_RUNS}, not ${values.runs}`);
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  if (!(await dockerWorks())) throw new Error('no Docker engine is reachable (`docker info` failed)');
  const chromium = await chromiumVersion();
  await ensureBaseImages('bench:web');
  const env = dotEnv();
  await requireCompose();
  const stack = new Stack(PROJECT, await freePort(), env, { tag: 'lighthouse' });
  const url = `${stack.baseUrl}/`;
  const images = env.NODE_IMAGE ? ` (base images ${env.NODE_IMAGE}, ${env.NGINX_IMAGE})` : '';
  log(`building and starting the stack as ${PROJECT} on ${stack.baseUrl}${images}`);
  return withStack(stack, 'bench:web', async (stop) => {
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(`GET ${url} answered ${answer.status}, not 200`);
    await answer.arrayBuffer();
    log(`Lighthouse ${LIGHTHOUSE_VERSION}, Chromium ${chromium}: ${runsPerPreset} run(s) per preset`);
    return report(await runAll(url, runsPerPreset, stop), url, runsPerPreset, chromium);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`[bench:web] ERROR: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
