/** The deploy command as an operator runs it, and the clean-up of a suite's releases. */
import { rmSync } from 'node:fs';
import { releasesFile } from '../scripts/lib/release.js';
import { run, type RunResult } from '../scripts/lib/run.js';

/**
 * `npm run deploy` against Compose project `project` made of `files`, with `args` after them; prints what it
 * said, for the stack suite's log.
 */
export async function runDeploy(
  project: string,
  files: string[],
  options: { args?: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  const { args = [], env = {}, timeoutMs = 900_000 } = options;
  const fileArgs = files.flatMap((file) => ['--file', file]);
  const command = ['run', '--silent', 'deploy', '--', '--project-name', project, ...fileArgs, ...args];
  const result = await run('npm', command, { env, timeoutMs });
  console.log(`[${['deploy', ...args].join(' ')}] exit ${result.code}\n${result.stdout}${result.stderr}`);
  return result;
}

/** Forgets a project's releases tagged `<prefix>-…`: the log, and their images (a test suite's own). */
export async function forgetReleases(project: string, prefix: string): Promise<void> {
  rmSync(releasesFile(project), { force: true });
  const format = '{{.Repository}}:{{.Tag}}';
  const tags = (await run('docker', ['image', 'ls', '--format', format, `softy-pinko-*:${prefix}-*`])).stdout;
  if (tags.trim()) await run('docker', ['image', 'rm', ...tags.split('\n').filter(Boolean)]);
}
