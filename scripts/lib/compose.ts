/** The one driver of `docker compose` (v2): the deploy, the backups, the bench and the stack suite. */
import { run, runLoud, type Redirect, type RunResult } from './run.js';

export interface ComposeSettings {
  /** Compose's -f files, in order; none: its default, docker-compose.yml. */
  files?: string[] | undefined;
  /** Compose's -p; none: the directory's name. */
  project?: string | undefined;
  /** Variables the files are filled in with (TAG, PROXY_PORT, …), over this process's own. */
  env?: NodeJS.ProcessEnv;
}

/** A Compose command that failed: its message is what Compose said, for the operator, not a stack trace. */
export class ComposeError extends Error {}

export class Compose {
  private config: Promise<unknown> | undefined;

  constructor(private readonly settings: ComposeSettings = {}) {}

  get env(): NodeJS.ProcessEnv {
    return this.settings.env ?? {};
  }

  get files(): string[] {
    return this.settings.files ?? [];
  }

  /** `docker compose` with this project and these files, then `args`: the command and its arguments. */
  composeArgs(args: string[]): [string, string[]] {
    const { project } = this.settings;
    const files = this.files.flatMap((file) => ['--file', file]);
    return ['docker', ['compose', ...(project ? ['--project-name', project] : []), ...files, ...args]];
  }

  exec(args: string[], timeoutMs?: number, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    const [command, full] = this.composeArgs(args);
    return run(command, full, { env: { ...this.env, ...env }, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  /** What the command printed; it throws, with what Compose said, when the command fails. */
  async output(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
    const { code, stdout, stderr } = await this.exec(args, 300_000, env);
    if (code !== 0) throw new ComposeError(`docker compose ${args[0]} failed: ${(stderr || stdout).trim()}`);
    return stdout.trim();
  }

  /** Streams the command's output to the terminal (or stdin and stdout to files); throws when it fails. */
  execLoud(args: string[], io: Redirect = {}): Promise<void> {
    const [command, full] = this.composeArgs(args);
    return runLoud(command, full, this.env, io);
  }

  /** Container ids of a service (or all), oldest first: running ones, or `all` of them. */
  async containers(service?: string, { all = false } = {}): Promise<string[]> {
    const ps = ['ps', '--quiet', all ? '--all' : '--status=running', ...(service ? [service] : [])];
    const ids = (await this.output(ps)).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const { stdout } = await run('docker', ['inspect', '--format', '{{.Created}} {{.Id}}', ...ids]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .sort()
      .map((line) => line.split(' ')[1]!);
  }

  /** The files merged as Compose reads them, read once. */
  merged<T>(): Promise<T> {
    this.config ??= this.output(['config', '--format', 'json']).then((json) => JSON.parse(json) as unknown);
    return this.config as Promise<T>;
  }
}

type State = { Status: string; ExitCode: number; Health?: { Status: string; Log?: { Output: string }[] } };

/** A container's health; a one-shot job without a check (migrate) that exited 0 counts as healthy. */
async function health(ids: string[]): Promise<{ id: string; status: string; last: string }[]> {
  if (ids.length === 0) return [];
  const { stdout } = await run('docker', ['inspect', '--format', '{{.Id}} {{json .State}}', ...ids]);
  return stdout.split('\n').flatMap((line) => {
    if (!line) return [];
    const state = JSON.parse(line.slice(line.indexOf(' ') + 1)) as State;
    const done = !state.Health && state.Status === 'exited' && state.ExitCode === 0;
    const last = state.Health?.Log?.at(-1)?.Output.trim() || '(no output)';
    return [{ id: line.slice(0, 12), status: done ? 'healthy' : (state.Health?.Status ?? state.Status), last }];
  });
}

/**
 * Waits until every container `list` names is healthy. At the deadline, or with `failFast` as soon as one is
 * unhealthy or has exited, throws naming the first that is not and what its last health check printed.
 */
export async function waitHealthy(list: () => Promise<string[]>, timeoutMs: number, failFast = false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await health(await list());
    if (states.length > 0 && states.every((state) => state.status === 'healthy')) return;
    const bad = failFast ? states.find((state) => ['unhealthy', 'exited'].includes(state.status)) : undefined;
    if (bad || Date.now() > deadline) {
      const { id = 'none', status = 'missing', last = '' } = bad ?? states.find((s) => s.status !== 'healthy') ?? {};
      const after = bad ? '' : `, after ${timeoutMs / 1000} s`;
      throw new ComposeError(`is ${status} (container ${id}${after}); last health check output: ${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
