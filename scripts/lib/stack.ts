/**
 * Thin helpers over the docker CLI and Compose, shared by the stack suite (e2e/) and the benchmarks:
 * bring a Compose project up, wait until it is healthy, take it down.
 * They drive Compose v2 (`docker compose`).
 */
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

export async function dockerWorks(): Promise<boolean> {
  return (await run('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 })).code === 0;
}

/**
 * How long the proxy may still send to a stopped container's address: its resolver's `valid=` in
 * proxy/proxy.conf, read from there, plus a second for a request sent just before it looked again.
 */
export function proxyDnsRefreshMs(): number {
  const conf = readFileSync(`${REPO_ROOT}proxy/proxy.conf`, 'utf8');
  const seconds = /^resolver\s[^;]*\bvalid=(\d+)s/m.exec(conf)?.[1];
  if (!seconds) throw new Error('proxy/proxy.conf has no `resolver … valid=Ns;`');
  return Number(seconds) * 1000 + 1000;
}

/** Fails, naming the plugin, when `docker compose` is missing. */
export async function requireCompose(): Promise<void> {
  if ((await run('docker', ['compose', 'version'], { timeoutMs: 20_000 })).code === 0) return;
  throw new Error('The Compose v2 plugin is not installed: `docker compose version` failed');
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
 * Makes sure the base images Compose builds FROM exist: present, pulled, or — when no registry
 * answers — built offline with `scripts/images-offline.sh` (which also points .env at them).
 */
export async function ensureBaseImages(label = 'stack'): Promise<void> {
  if (await baseImagesAvailable(label)) return;
  console.log(`[${label}] no registry answers: building the base images offline (npm run images:offline)`);
  await runLoud('bash', ['scripts/images-offline.sh']);
}

/**
 * Fresh random database secrets for the PostgreSQL override, as `npm run secrets:db` makes them, in a
 * temporary folder: the environment that points Compose at them (a fresh clone has none of its own).
 */
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

  /** Container IDs of one service (or all), running or not. */
  async containers(service?: string): Promise<string[]> {
    const filters = ['--filter', `label=com.docker.compose.project=${this.project}`];
    if (service) filters.push('--filter', `label=com.docker.compose.service=${service}`);
    const { stdout } = await run('docker', ['ps', '--all', '--quiet', ...filters]);
    return stdout.split('\n').filter(Boolean);
  }

  async networks(): Promise<string[]> {
    const { stdout } = await run('docker', [
      'network',
      'ls',
      '--quiet',
      '--filter',
      `label=com.docker.compose.project=${this.project}`,
    ]);
    return stdout.split('\n').filter(Boolean);
  }

  async inspect<T = unknown>(id: string, format: string): Promise<T> {
    const { stdout, code, stderr } = await run('docker', ['inspect', '--format', `{{json ${format}}}`, id]);
    if (code !== 0) throw new Error(`docker inspect ${id}: ${stderr}`);
    return JSON.parse(stdout) as T;
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

  /** Sets the number of back-end replicas without touching the other services. */
  async scaleBackEnd(replicas: number): Promise<void> {
    await this.execLoud(['up', '--detach', '--no-recreate', '--scale', `back-end=${replicas}`]);
  }

  async down(): Promise<void> {
    await this.execLoud(DOWN);
    this.callOffWatcher?.();
    this.callOffWatcher = undefined;
  }

  /**
   * A detached shell, in a session of its own so Ctrl-C does not reach it, that runs `down` once this
   * process is gone, however it ended (SIGKILL included): a stack brought up is never left behind.
   * Returns the function that calls it off.
   */
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
 * Brings `stack` up (clearing what an aborted run left), runs `body`, and takes the stack down again, the
 * same way for every script: on success, on failure, on Ctrl-C or SIGTERM (exit 130 or 143), and, like
 * every Stack brought up, through its watcher when this process is killed outright. `body` gets a signal
 * that aborts on Ctrl-C; it must keep the event loop free (tsx kills a child that does not take a signal at
 * once), so heavy work goes to child processes.
 */
export async function withStack<T>(
  stack: Stack,
  label: string,
  body: (interrupted: AbortSignal) => Promise<T>,
): Promise<T> {
  const log = (message: string): void => console.error(`[${label}] ${message}`);
  const interrupt = new AbortController();
  let starting: Promise<unknown> = Promise.resolve();
  let downing: Promise<void> | undefined;
  const down = (): Promise<void> =>
    (downing ??= starting
      .catch(() => undefined)
      .then(async () => {
        log(`taking ${stack.project} down …`);
        await stack.down();
      })
      .catch((error: unknown) => log(`down failed (${String(error)}); retried once this process has ended`)));
  let firstSignalAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    // tsx relays the terminal's Ctrl-C, so the first one can arrive twice.
    if (interrupt.signal.aborted) {
      if (Date.now() - firstSignalAt > 1000) log(`${signal}: still taking the stack down, one moment …`);
      return;
    }
    firstSignalAt = Date.now();
    log(`${signal}: stopping`);
    interrupt.abort();
    void down().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    starting = stack.execLoud(['down', '--volumes', '--remove-orphans', '--timeout', '5']).then(() => stack.up());
    await starting;
    return await body(interrupt.signal);
  } finally {
    await down();
    // Interrupted: the signal handler ends the process; the failure it caused in `body` is no news.
    if (interrupt.signal.aborted) await new Promise(() => undefined);
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
