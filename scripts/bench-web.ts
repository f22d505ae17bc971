/**
 * `npm run bench:web` — Lighthouse against the whole stack, in containers, through the proxy.
 *
 * 1. Brings the stack up with Compose as its own project (`softy-pinko-lighthouse`) on a free port,
 *    building the base images offline first when no registry has them (like the stack suite).
 * 2. Runs the Lighthouse CLI in Debian's Chromium (`/usr/bin/chromium`, or CHROMIUM_PATH), which can
 *    reach nothing but loopback, with a fresh profile per run: the mobile preset (Lighthouse's default)
 *    and the desktop preset (core/config/desktop-config.js), 3 runs each (`--runs N` to change).
 * 3. Prints one markdown table of the medians beside the original template's figures, and writes it
 *    and every run's JSON report to artifacts/lighthouse/.
 * 4. Exits non-zero when any median score is below 100, naming the audits that lost points.
 *
 * The stack is always taken down at the end: on success, on failure and on Ctrl+C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Result } from 'lighthouse';
import { REPO_ROOT, Stack, composeCommand, dockerWorks, dotEnv, ensureBaseImages, freePort, run } from './lib/stack.js';
import { CHROMIUM_BASE_FLAGS, CHROMIUM_PATH, chromiumMissing } from './lib/chromium.js';

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

/** The original free template, measured with the mobile preset (quoted in our issue). */
const TEMPLATE = {
  scores: { performance: 59, accessibility: 84, 'best-practices': 75, seo: 82 } satisfies Record<Category, number>,
  bytes: '1.94 MB',
  requests: 30,
  lcp: '9.2 s',
};

/** The figures we keep from one Lighthouse run. Scores are 0–100; null when Lighthouse could not score. */
interface Figures {
  scores: Record<Category, number | null>;
  lcpMs: number | null;
  cls: number | null;
  tbtMs: number | null;
  bytes: number | null;
  requests: number | null;
}

interface Run {
  preset: Preset;
  index: number;
  lhr: Result;
  figures: Figures;
}

function log(message: string): void {
  console.log(`[bench:web] ${message}`);
}

// ------------------------------------------------------------------------------------ teardown --
//
// `tsx` runs this file in a child process and, on Ctrl+C, SIGKILLs that child unless it acknowledges
// the signal within ~60 ms. So this process keeps its event loop free (Lighthouse runs in a child
// process of its own, never in here), and a detached guardian takes the stack down should this
// process die anyway.

let stack: Stack | undefined;
/** Settles when `compose up` has finished, well or not: the stack is taken down only after that. */
let stackStarting: Promise<unknown> | undefined;
let guardian: ChildProcess | undefined;
let lighthouseChild: ChildProcess | undefined;
let teardownPromise: Promise<void> | undefined;
let interrupted = false;

/**
 * A shell in its own session (so Ctrl+C does not reach it) that waits for this process to end, then
 * runs `compose down` for our project. Stopped once this process has taken the stack down itself.
 */
function startGuardian(compose: string[]): ChildProcess {
  const down = [
    ...compose,
    '--project-name',
    PROJECT,
    '--file',
    `${REPO_ROOT}docker-compose.yml`,
    'down',
    '--volumes',
    '--remove-orphans',
    '--timeout',
    '15',
  ];
  const child = spawn(
    'sh',
    ['-c', 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$@"', String(process.pid), ...down],
    {
      cwd: REPO_ROOT,
      detached: true,
      stdio: 'ignore',
    },
  );
  child.unref();
  return child;
}

function stopGuardian(): void {
  if (guardian?.pid === undefined) return;
  try {
    process.kill(-guardian.pid, 'SIGTERM'); // the shell and its `sleep`
  } catch {
    // already gone
  }
  guardian = undefined;
}

/** Asks a running Lighthouse to stop (it closes its Chromium on SIGINT) and waits for it, 10 s at most. */
async function stopLighthouse(): Promise<void> {
  const child = lighthouseChild;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Stops Lighthouse and takes the stack down; safe to call more than once (runs once). */
function teardown(): Promise<void> {
  teardownPromise ??= (async () => {
    await stopLighthouse();
    if (!stack) return;
    await stackStarting?.catch(() => undefined);
    log(`taking the stack down (project ${PROJECT})`);
    try {
      await stack.down();
      stopGuardian();
    } catch (error) {
      // The guardian is left running: it tries again once this process has ended.
      console.error(`[bench:web] could not take the stack down: ${(error as Error).message}`);
      console.error(
        `[bench:web] if containers remain: ${stack.compose.join(' ')} --project-name ${PROJECT} down --volumes --remove-orphans`,
      );
    }
  })();
  return teardownPromise;
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) {
    console.error(`[bench:web] ${signal}: still cleaning up, one moment …`);
    return;
  }
  interrupted = true;
  console.error(`\n[bench:web] ${signal}: stopping Lighthouse and taking the stack down …`);
  void teardown().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
}

// -------------------------------------------------------------------------------------- running --

/** One Lighthouse run in a child process; its JSON report is written to `outputPath` and returned. */
async function runLighthouse(url: string, preset: Preset, outputPath: string): Promise<Result> {
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
  });
  lighthouseChild = child;
  const [code, signal] = (await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (...result) => resolve(result));
  })) as [number | null, NodeJS.Signals | null];
  lighthouseChild = undefined;
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

async function measure(url: string, preset: Preset, outputPath: string, label: string): Promise<Result> {
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    try {
      const lhr = await runLighthouse(url, preset, outputPath);
      if (!lhr.runtimeError || attempt === ATTEMPTS_PER_RUN) return lhr;
      problem = `${lhr.runtimeError.code}: ${lhr.runtimeError.message}`;
    } catch (error) {
      if (interrupted || attempt === ATTEMPTS_PER_RUN) throw error;
      problem = (error as Error).message;
    }
    if (interrupted) throw new Error('interrupted');
    console.error(
      `[bench:web] ${label}: Lighthouse could not measure (${problem}); running it again (attempt ${attempt + 1}/${ATTEMPTS_PER_RUN})`,
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
    lcpMs: numericValue(lhr, 'largest-contentful-paint'),
    cls: numericValue(lhr, 'cumulative-layout-shift'),
    tbtMs: numericValue(lhr, 'total-blocking-time'),
    // Transfer sizes (headers and compression included) of every request the page made.
    bytes: numericValue(lhr, 'total-byte-weight'),
    requests: requests?.type === 'table' ? requests.items.length : null,
  };
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
    lcpMs: of((figures) => figures.lcpMs),
    cls: of((figures) => figures.cls),
    tbtMs: of((figures) => figures.tbtMs),
    bytes: of((figures) => figures.bytes),
    requests: of((figures) => figures.requests),
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

function table(
  medians: Record<Preset, Figures>,
  runs: Run[],
  url: string,
  runsPerPreset: number,
  chromium: string,
): string {
  const first = runs[0]!.lhr;
  const cpus = os.cpus();
  const benchmarks = runs.map((run) => run.lhr.environment.benchmarkIndex);
  const benchmark = median(benchmarks);
  const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  const lines = [
    `## Lighthouse: Softy Pinko vs the original template`,
    '',
    row([
      '',
      'Original template (mobile, from the issue)',
      `Softy Pinko, mobile (median of ${runsPerPreset})`,
      `Softy Pinko, desktop (median of ${runsPerPreset})`,
    ]),
    row(['---', '---:', '---:', '---:']),
    ...CATEGORIES.map((id) =>
      row([
        CATEGORY_NAMES[id],
        String(TEMPLATE.scores[id]),
        fmt.score(medians.mobile.scores[id]),
        fmt.score(medians.desktop.scores[id]),
      ]),
    ),
    row([
      'Largest Contentful Paint',
      TEMPLATE.lcp,
      fmt.seconds(medians.mobile.lcpMs),
      fmt.seconds(medians.desktop.lcpMs),
    ]),
    row(['Cumulative Layout Shift', DASH, fmt.cls(medians.mobile.cls), fmt.cls(medians.desktop.cls)]),
    row(['Total Blocking Time', DASH, fmt.ms(medians.mobile.tbtMs), fmt.ms(medians.desktop.tbtMs)]),
    row(['Bytes transferred', TEMPLATE.bytes, fmt.bytes(medians.mobile.bytes), fmt.bytes(medians.desktop.bytes)]),
    row([
      'Requests',
      String(TEMPLATE.requests),
      fmt.count(medians.mobile.requests),
      fmt.count(medians.desktop.requests),
    ]),
    '',
    `- Machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}` +
      (benchmark === null
        ? ''
        : `; Lighthouse benchmarkIndex ${Math.round(benchmark)} (median; ${Math.round(Math.min(...benchmarks))}–${Math.round(Math.max(...benchmarks))} over the runs)`),
    `- Lighthouse ${first.lighthouseVersion}, Chromium ${chromium} (headless, ${CHROMIUM_PATH}), Node ${process.version}`,
    `- ${url} through the proxy, Compose project \`${PROJECT}\`; categories ${CATEGORIES.join(', ')}`,
    ...PRESETS.map((preset) => {
      const presetRuns = runs.filter((run) => run.preset === preset);
      const perRun = CATEGORIES.map(
        (id) =>
          `${CATEGORY_NAMES[id].toLowerCase()} ${presetRuns.map((run) => fmt.score(run.figures.scores[id])).join('/')}`,
      );
      return `- ${preset}: ${presetRuns[0] ? conditions(presetRuns[0].lhr) : 'n/a'}; scores per run: ${perRun.join(', ')}`;
    }),
    `- ${DASH}: not quoted for the template. Scores and figures are medians, each taken on its own.`,
  ];
  return `${lines.join('\n')}\n`;
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
        `  - \`${audit.id}\` — ${audit.title} (weight ${audit.weight}; lost points in ${audit.runs.length}/${runsPerPreset} runs: ${audit.runs.join('; ')})`,
      );
    }
  }
  const slowRuns = runs.filter((run) => run.lhr.environment.benchmarkIndex < SLOW_CPU_BENCHMARK_INDEX).length;
  if (lost.some((entry) => entry.category === 'performance') && slowRuns > 0) {
    lines.push(
      '',
      `Note: in ${slowRuns}/${runs.length} runs Lighthouse's benchmarkIndex was below ${SLOW_CPU_BENCHMARK_INDEX} (a busy or slow CPU). ` +
        'Timing metrics (TBT above all) grow with CPU load: rerun on an idle machine, or with `--runs 5`, before chasing them.',
    );
  }
  return `${lines.join('\n')}\n`;
}

// ----------------------------------------------------------------------------------------- main --

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const runsPerPreset = Number(values.runs);
  if (!Number.isInteger(runsPerPreset) || runsPerPreset < 1)
    throw new Error(`--runs must be a positive integer, not ${values.runs}`);

  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  if (!(await dockerWorks())) throw new Error('no Docker engine is reachable (`docker info` failed)');
  const chromium = await chromiumVersion();

  await ensureBaseImages('bench:web');
  const env = dotEnv();
  const compose = await composeCommand();
  stack = new Stack(compose, PROJECT, await freePort(), env, { tag: 'lighthouse' });
  guardian = startGuardian(compose);
  const url = `${stack.baseUrl}/`;
  try {
    log(
      `building and starting the stack as ${PROJECT} on ${stack.baseUrl}` +
        (env.NODE_IMAGE ? ` (base images ${env.NODE_IMAGE}, ${env.NGINX_IMAGE})` : ''),
    );
    stackStarting = stack.up();
    await stackStarting;
    const answer = await fetch(url);
    if (!answer.ok) throw new Error(`GET ${url} answered ${answer.status}, not 200`);
    await answer.arrayBuffer();

    rmSync(OUT_DIR, { recursive: true, force: true });
    mkdirSync(OUT_DIR, { recursive: true });

    log(
      `Lighthouse ${LIGHTHOUSE_VERSION}, Chromium ${chromium}: ${runsPerPreset} run(s) per preset (${PRESETS.join(', ')})`,
    );
    const runs: Run[] = [];
    for (const preset of PRESETS) {
      for (let index = 1; index <= runsPerPreset; index++) {
        const lhr = await measure(
          url,
          preset,
          join(OUT_DIR, `${preset}-run${index}.json`),
          `${preset} run ${index}/${runsPerPreset}`,
        );
        const figures = figuresOf(lhr);
        runs.push({ preset, index, lhr, figures });
        const scores = CATEGORIES.map((id) => `${id} ${fmt.score(figures.scores[id])}`).join(', ');
        log(
          `${preset} run ${index}/${runsPerPreset}: ${scores}; LCP ${fmt.seconds(figures.lcpMs)}, TBT ${fmt.ms(figures.tbtMs)}, CLS ${fmt.cls(figures.cls)}`,
        );
        if (lhr.runtimeError)
          console.error(`[bench:web]   runtime error: ${lhr.runtimeError.code}: ${lhr.runtimeError.message}`);
        for (const warning of lhr.runWarnings) console.error(`[bench:web]   warning: ${warning}`);
      }
    }

    const medians = {
      mobile: medianFigures(runs.filter((run) => run.preset === 'mobile')),
      desktop: medianFigures(runs.filter((run) => run.preset === 'desktop')),
    };
    const report = table(medians, runs, url, runsPerPreset, chromium);
    const lost = lostPoints(runs, medians);
    const failing =
      lost.length > 0
        ? `\n### Scores below 100: audits that lost points\n\n${lostPointsText(lost, runs, runsPerPreset)}`
        : '';
    writeFileSync(join(OUT_DIR, 'summary.md'), report + failing);
    writeFileSync(
      join(OUT_DIR, 'summary.json'),
      `${JSON.stringify({ url, runsPerPreset, medians, template: TEMPLATE, runs: runs.map(({ preset, index, figures }) => ({ preset, index, figures })), lostPoints: lost }, null, 2)}\n`,
    );

    console.log(`\n${report}`);
    log(`reports: ${OUT_DIR}/{mobile,desktop}-run<N>.json, summary.md, summary.json`);
    if (lost.length === 0) {
      log('every median score is 100');
      return 0;
    }
    console.error(failing);
    console.error(`[bench:web] FAILED: ${lost.length} median score(s) below 100`);
    return 1;
  } finally {
    await teardown();
  }
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

main().then(
  (code) => {
    if (!interrupted) process.exit(code);
  },
  (error: unknown) => {
    if (interrupted) return;
    console.error(`[bench:web] ERROR: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
