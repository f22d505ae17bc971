/**
 * The one driver of `docker compose`, the Compose v2 plugin users run: the deploy, the backups, the bench and
 * the stack suite all build their command lines here.
 */
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

  /** The files merged as Compose reads them, read once. */
  merged<T>(): Promise<T> {
    this.config ??= this.output(['config', '--format', 'json']).then((json) => JSON.parse(json) as unknown);
    return this.config as Promise<T>;
  }
}
