/**
 * A release: the images built from one commit, named by it (a changed tree's adds `-dirty-` and its content's
 * hash, so two builds never share a tag), and the log of what each deploy shipped.
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, run } from './stack.js';

/** What Compose's build reads: the tag, and the OCI labels' version, revision, source and creation time. */
export type BuildEnv = Record<'TAG' | 'VERSION' | 'REVISION' | 'SOURCE' | 'CREATED', string>;

async function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await run('git', args, { env, cwd });
  if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout.trim();
}

/** The tree the working copy would commit, untracked files included, without touching the real index. */
async function workingTree(cwd: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'softy-pinko-index-'));
  try {
    const index = join(dir, 'index');
    // With its times: git trusts an entry's stat data only while the file is older than the index (racy git).
    const real = await git(cwd, ['rev-parse', '--path-format=absolute', '--git-path', 'index']);
    cpSync(real, index, { preserveTimestamps: true });
    await git(cwd, ['add', '--all', '.'], { GIT_INDEX_FILE: index });
    return await git(cwd, ['write-tree'], { GIT_INDEX_FILE: index });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The release the working copy builds, from git; a TAG in the environment wins, labels and all. */
export async function buildEnv(env: NodeJS.ProcessEnv = process.env, cwd = REPO_ROOT): Promise<BuildEnv> {
  const source = (await run('git', ['remote', 'get-url', 'origin'], { cwd })).stdout.trim() || 'unknown';
  if (env.TAG) {
    const { TAG, VERSION = 'unknown', REVISION = 'unknown', CREATED = 'unknown' } = env;
    return { TAG, VERSION, REVISION, SOURCE: env.SOURCE ?? source, CREATED };
  }
  const head = await git(cwd, ['show', '--no-patch', '--abbrev=12', '--format=%H %h %T %cI', 'HEAD']);
  const [revision, short, headTree, created] = head.split(' ') as [string, string, string, string];
  const tree = await workingTree(cwd);
  if (tree === headTree) return { TAG: short, VERSION: short, REVISION: revision, SOURCE: source, CREATED: created };
  const tag = `${short}-dirty-${tree.slice(0, 8)}`;
  return { TAG: tag, VERSION: tag, REVISION: `${revision}-dirty`, SOURCE: source, CREATED: new Date().toISOString() };
}

/** One line of the releases log: the tag a deploy shipped and each service's image. */
export interface Release {
  tag: string;
  at: string;
  images: Record<string, string>;
  rollback?: boolean;
}

/** `.releases/<project>.jsonl` in the checkout the deploys run from (git-ignored). */
export const releasesFile = (project: string): string => join(REPO_ROOT, '.releases', `${project}.jsonl`);

export function readReleases(project: string): Release[] {
  const file = releasesFile(project);
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return lines.map((line) => JSON.parse(line) as Release);
}

export function recordRelease(project: string, release: Release): void {
  mkdirSync(join(REPO_ROOT, '.releases'), { recursive: true });
  appendFileSync(releasesFile(project), `${JSON.stringify(release)}\n`);
}

/** The release before the current one (the last line): the newest with another tag. */
export function previousRelease(releases: Release[]): Release | undefined {
  const current = releases.at(-1);
  return [...releases].reverse().find((release) => release.tag !== current?.tag);
}
