/**
 * The bench's durable-write rows: `POST /api/contact` through the proxy, every message on disk
 * (datasync, or COMMIT) before its 201, for three back-ends measured side by side in the same rounds:
 *
 * - the file store before group commit: the back-end built from BASELINE_COMMIT, one datasync per message,
 *   behind a second proxy of our own image (docker-compose.bench.yml's baseline-back-end and baseline-proxy);
 * - the file store with group commit: the bench stack's own back-end, behind its proxy;
 * - the PostgreSQL store: Compose project softy-pinko-bench-postgres (docker-compose.postgres.yml as shipped),
 *   up only for these rows and taken down with its volume afterwards.
 */
import {
  OFFICIAL_BASE_IMAGES,
  REPO_ROOT,
  Stack,
  databaseSecretsEnv,
  dotEnv,
  freePort,
  runLoud,
  withStack,
  type StackOptions,
} from '../lib/stack.js';
import { check, verdict, type Check } from './checks.js';
import { RUNS, log, measure, pairedRatio, row, target, warmUp, type Target } from './measure.js';

/** The baseline: the last commit before group commit, whose file store the durable-write checks measure against. */
const BASELINE_COMMIT = '145b43da7304f69fc3caaef81136c10b72b12e71';
const BASELINE_SHORT = BASELINE_COMMIT.slice(0, 7);
/** Named in docker-compose.bench.yml's baseline-back-end, which Compose never builds itself. */
const BASELINE_IMAGE = 'softy-pinko-back-end:bench-baseline';
const WRK_POST = `${REPO_ROOT}scripts/bench/wrk-post.lua`;
/** Each store must take at least this many times the baseline's durable POSTs per second. */
const SPEED_UP = 2;

/** Builds BASELINE_IMAGE from the commit's own files (git archive as the build context); cached after once. */
export async function buildBaseline(): Promise<void> {
  log(`building ${BASELINE_IMAGE} from commit ${BASELINE_SHORT} …`);
  const { NODE_IMAGE } = { ...OFFICIAL_BASE_IMAGES, ...dotEnv() };
  const build = `git archive --format=tar ${BASELINE_COMMIT} | docker build --quiet --file back-end/Dockerfile \
    --build-arg NODE_IMAGE --tag ${BASELINE_IMAGE} -`;
  await runLoud('bash', ['-o', 'pipefail', '-c', build], { NODE_IMAGE });
}

export interface PostTargets {
  baseline: Target;
  fileStore: Target;
  postgres: Target;
}

/** The three rows, in the order they run and are shown. */
export const postTargets = (urls: Record<keyof PostTargets, string>): PostTargets => {
  const post = (label: string, url: string): Target => target(label, `${url}/api/contact`, [], WRK_POST);
  return {
    baseline: post('`POST /api/contact`, file store before group commit (baseline)', urls.baseline),
    fileStore: post('`POST /api/contact`, file store with group commit', urls.fileStore),
    postgres: post('`POST /api/contact`, PostgreSQL store', urls.postgres),
  };
};

/** One message through each proxy must be stored (201), and each current back-end must run the store named. */
async function expectStored(t: PostTargets): Promise<void> {
  const message = { name: 'Bench', email: 'bench@example.com', message: 'Checking before the runs.' };
  for (const x of Object.values(t)) {
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(message) };
    const response = await fetch(x.url, { ...init, signal: AbortSignal.timeout(10_000) });
    if (response.status !== 201) throw new Error(`POST ${x.url}: status ${response.status}: ${await response.text()}`);
  }
  for (const [kind, x] of Object.entries({ file: t.fileStore, postgres: t.postgres })) {
    const ready = await fetch(x.url.replace(/contact$/, 'health/ready'), { signal: AbortSignal.timeout(10_000) });
    const body = (await ready.json()) as { store?: string };
    if (body.store !== kind) throw new Error(`${x.url}: the store is ${String(body.store)}, not ${kind}`);
  }
}

/** The PostgreSQL project: the shipped stack with docker-compose.postgres.yml, its proxy on a port of its own. */
export async function postgresStack(env: NodeJS.ProcessEnv, options: StackOptions) {
  const files = [`${REPO_ROOT}docker-compose.postgres.yml`];
  const secrets = await databaseSecretsEnv();
  return new Stack('softy-pinko-bench-postgres', await freePort(), { ...env, ...secrets }, { ...options, files });
}

/** Brings the PostgreSQL project up, warms the three targets up and runs them in interleaved rounds. */
export function measurePosts(postgres: Stack, urls: Omit<Record<keyof PostTargets, string>, 'postgres'>) {
  return withStack(postgres, 'bench', async (stop) => {
    const t = postTargets({ ...urls, postgres: postgres.baseUrl });
    await expectStored(t);
    await warmUp({ ...t });
    await measure({ ...t }, RUNS, stop);
    return t;
  });
}

/** The durable-write targets: each store at least SPEED_UP times the file store before group commit, same rounds. */
export function postChecks(t: PostTargets): Record<'fileStore', Check[]> {
  return {
    fileStore: [
      check('req/s vs file store before group commit', pairedRatio(t.fileStore, t.baseline, 'rps'), '≥', SPEED_UP),
    ],
  };
}

/** How the rows are measured, for the report's method line. */
export const POSTS_METHOD =
  'The `POST /api/contact` rows send a valid JSON message without an Idempotency-Key, so each request stores ' +
  'one; the file store before group commit is the back-end built from the baseline commit behind a second ' +
  'proxy of our image, PostgreSQL is Compose project softy-pinko-bench-postgres (docker-compose.postgres.yml ' +
  'as shipped).';

/** The rows, numbered from `first`, under a heading row of their own; `checks` holds postChecks' verdicts. */
export function postRows(t: PostTargets, checks: Record<string, Check[]>, first: number): string[] {
  const vs = (c: Check): string => `vs #${first}: ${verdict(c)}`;
  return [
    '| | **durable writes: `POST /api/contact`, 201 only once the message is on disk** | | | | |',
    row(first, t.baseline, 'reference: one write and one datasync per message'),
    row(first + 1, t.fileStore, (checks.fileStore ?? []).map(vs).join('<br>')),
    // A withdrawn target (a contact form never needs thousands of writes a second): shown, not checked.
    row(
      first + 2,
      t.postgres,
      `vs #${first}: req/s **${pairedRatio(t.postgres, t.baseline, 'rps').toFixed(2)}×** (information)`,
    ),
  ];
}
