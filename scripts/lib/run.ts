/** Child processes for the scripts and the stack suite: run to completion, or stream to the terminal. */
import { execFile, spawn, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type RunResult = { code: number; stdout: string; stderr: string };

/** Runs a command to completion and returns its output; never throws on a non-zero exit. */
export async function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : 1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? failed.message,
    };
  }
}

/** Files a streamed command reads its stdin from and writes its stdout to (mode 600), instead of the terminal's. */
export type Redirect = { stdin?: string; stdout?: string };

/** Like run(), but streams output to the terminal (long builds show progress) and throws on failure. */
export async function runLoud(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  io: Redirect = {},
  timeoutMs = 1_800_000,
): Promise<void> {
  const input = io.stdin ? openSync(io.stdin, 'r') : 'ignore';
  const output = io.stdout ? openSync(io.stdout, 'w', 0o600) : 'inherit';
  try {
    const stdio: StdioOptions = [input, output, 'inherit'];
    const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio, timeout: timeoutMs });
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`);
  } finally {
    for (const fd of [input, output]) if (typeof fd === 'number') closeSync(fd);
  }
}
