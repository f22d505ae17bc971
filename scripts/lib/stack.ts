/** Compose projects for the stack suite (e2e/) and the benchmarks: up, healthy, down, never left behind. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseEnv } from 'node:util';
import { Compose, waitHealthy } from './compose.js';
import { REPO_ROOT, run, runLoud } from './run.js';

export { REPO_ROOT, run, runLoud, type RunResult } from './run.js';

/** The id a replica names itself by in X-Served-By, from its host name: the back-end's own definition. */
export { replicaId } from '../../back-end/src/replica-id.js';

/** A TCP port nothing listens on right now, for a stack's published proxy port. */
export { default as freePort } from 'get-port';

export const dockerWorks = async (): Promise<boolean> =>
  (await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 })).code === 0;

/** How long the proxy may still send to a stopped container: its resolver's `valid=` (proxy.conf) plus 1 s. */
export function proxyDnsRefreshMs(): number {
  const conf = readFileSync(`${REPO_ROOT}proxy/proxy.conf`, 'utf8');
  const seconds = /^resolver\s[^;]*\bvalid=(\d+)s/m.exec(conf)?.[1];
  if (!seconds) throw new Error('proxy/proxy.conf has no `resolver … valid=Ns;`');
  return Number(seconds) * 1000 + 1000;
}

/** The variables Compose would read from the repository's .env (written by `npm run images:offline`). */
export function dotEnv(): Record<string, string> {
  const file = `${REPO_ROOT}.env`;
  return existsSync(file) ? (parseEnv(readFileSync(file, 'utf8')) as Record<string, string>) : {};
}

/** The id of the image `reference` names, or undefined when there is none. */
export async function imageId(reference: string): Promise<string | undefined> {
  const { code, stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', reference]);
  return code === 0 ? stdout.trim() : undefined;
}

/** The Dockerfiles' default base images; the repository's .env (images:offline) may name others. */
export const OFFICIAL_BASE_IMAGES = { NODE_IMAGE: 'node:24-bookworm-slim', NGINX_IMAGE: 'nginx:1.30' };

/** True when every base image Compose will use is present locally or can be pulled. */
async function baseImagesAvailable(label: string): Promise<boolean> {
  const chosen = { ...OFFICIAL_BASE_IMAGES, ...dotEnv() };
  for (const image of [chosen.NODE_IMAGE, chosen.NGINX_IMAGE]) {
    if (await imageId(image)) continue;
    console.log(`[${label}] pulling ${image} …`);
    if ((await run('docker', ['pull', image], { timeoutMs: 300_000 })).code !== 0) return false;
  }
  return true;
}

/**
 * A script's first step: Docker, the Compose v2 plugin, and the base images Compose builds FROM (present, pulled,
 * or built offline: images-offline.sh points .env at them); or an error naming what is missing.
 */
export async function prepareDocker(label: string): Promise<void> {
  if (!(await dockerWorks())) throw new Error('no Docker engine is reachable (`docker info` failed)');
  if ((await run('docker', ['compose', 'version'], { timeoutMs: 20_000 })).code !== 0)
    throw new Error('The Compose v2 plugin is not installed: `docker compose version` failed');
  if (await baseImagesAvailable(label)) return;
  console.log(`[${label}] no registry answers: building the base images offline (npm run images:offline)`);
  await runLoud('bash', ['scripts/images-offline.sh']);
}

/** Runs a script's `main` and exits with the code it returns; a failure prints its message and exits 1. */
export function exitWith(label: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`[${label}] failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}

/** Fresh database secrets in a temporary folder (`npm run secrets:db`), and the variables naming them. */
export async function databaseSecretsEnv(): Promise<Record<string, string>> {
  const dir = mkdtempSync(`${tmpdir()}/softy-pinko-db-secrets-`);
  await runLoud('bash', [`${REPO_ROOT}scripts/db-secrets.sh`, dir]);
  return { POSTGRES_PASSWORD_SECRET: `${dir}/postgres-password`, DATABASE_URL_SECRET: `${dir}/database-url` };
}

/** Optional extras of a Stack; without them it is the repository's docker-compose.yml, images tagged `e2e`. */
export interface StackOptions {
  /** More Compose files layered over docker-compose.yml, in order (e.g. the benchmark's override). */
  files?: string[];
  /** The TAG the images are built under, so one suite does not overwrite another's images. */
  tag?: string;
}

/** One Compose project: its name, the port the proxy is published on, and the commands to drive it. */
export class Stack extends Compose {
  constructor(
    readonly project: string,
    readonly proxyPort: number,
    readonly extraEnv: NodeJS.ProcessEnv = {},
    readonly options: StackOptions = {},
  ) {
    super({ project });
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.proxyPort}`;
  }

  /** What Compose sees besides the files: a command run against this stack needs it too. */
  override get env(): NodeJS.ProcessEnv {
    return { ...this.extraEnv, PROXY_PORT: String(this.proxyPort), TAG: this.options.tag ?? 'e2e' };
  }

  /** The Compose files this stack is made of, docker-compose.yml first. */
  override get files(): string[] {
    return [`${REPO_ROOT}docker-compose.yml`, ...(this.options.files ?? [])];
  }

  /** The stack suite looks at containers that stopped too. */
  override containers(service?: string, { all = true } = {}): Promise<string[]> {
    return super.containers(service, { all });
  }

  /** Waits until every container of the project reports healthy; fails with the first that is not. */
  async waitHealthy(timeoutMs = 180_000): Promise<void> {
    await waitHealthy(() => this.containers(), timeoutMs).catch((error: Error) => {
      throw new Error(`stack ${this.project}: a container ${error.message}`);
    });
  }

  /** Calls off the watcher that up() started (downWhenGone), once down() has succeeded. */
  private callOffWatcher: (() => void) | undefined;

  async up(): Promise<void> {
    this.callOffWatcher ??= this.downWhenGone();
    try {
      await this.execLoud(['up', '--detach', '--build']);
      await this.waitHealthy();
    } catch (error) {
      // The containers' own words are what explains a failed start; print them before they are gone.
      console.error((await this.exec(['logs', '--no-color', '--tail', '80'])).stdout);
      throw error;
    }
  }

  async down(): Promise<void> {
    await this.execLoud(DOWN);
    this.callOffWatcher?.();
    this.callOffWatcher = undefined;
  }

  /** A detached shell (Ctrl-C does not reach it) that runs `down` once this process is gone, SIGKILL included. */
  private downWhenGone(): () => void {
    const [command, args] = this.composeArgs(DOWN);
    const watcher = spawn(
      'sh',
      ['-c', 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$@"', String(process.pid), command, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...this.env }, detached: true, stdio: 'ignore' },
    );
    watcher.unref();
    return () => {
      if (watcher.pid !== undefined && watcher.exitCode === null) process.kill(-watcher.pid, 'SIGTERM');
    };
  }
}

const DOWN = ['down', '--volumes', '--remove-orphans', '--timeout', '15'];

/**
 * Brings `stack` up (clearing what an aborted run left), runs `body`, and takes the stack down again. On Ctrl-C
 * or SIGTERM `body`'s signal aborts and the process ends at once (130 or 143): the watcher up() started takes
 * the stack down once it is gone.
 */
export async function withStack<T>(stack: Stack, label: string, body: (stop: AbortSignal) => Promise<T>): Promise<T> {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`[${label}] ${signal}: stopping; ${stack.project} is taken down in the background`);
    interrupt.abort();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    await stack.execLoud(['down', '--volumes', '--remove-orphans', '--timeout', '5']);
    await stack.up();
    return await body(interrupt.signal);
  } finally {
    console.error(`[${label}] taking ${stack.project} down …`);
    await stack.down();
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
