/**
 * A real, throwaway PostgreSQL server for the tests: `initdb` in a temporary directory, `pg_ctl` on a free
 * loopback port, run as a non-root user (PostgreSQL refuses to run as root), stopped and removed afterwards.
 * Without PostgreSQL's binaries the suites that need it skip loudly; under CI=true they fail instead.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';

const execFileAsync = promisify(execFile);

/** The user the server runs as when the tests run as root (CI, this project's containers). */
const SERVER_USER = 'nobody';

/** `PG_BIN`, else the newest `/usr/lib/postgresql/<major>/bin` (Debian's layout), else undefined. */
function findPostgresBin(): string | undefined {
  const candidates = process.env.PG_BIN
    ? [process.env.PG_BIN]
    : existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql')
          .filter((name) => /^\d+$/.test(name))
          .sort((a, b) => Number(b) - Number(a))
          .map((major) => `/usr/lib/postgresql/${major}/bin`)
      : [];
  return candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}

const PG_BIN = findPostgresBin();

/** Why the PostgreSQL suites cannot run here, or '' when they can. */
export const postgresSkipReason = PG_BIN
  ? ''
  : 'PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin; set PG_BIN or install postgresql)';

if (postgresSkipReason) {
  // Thrown at import, so every file that needs the server fails rather than passing with nothing tested.
  if (process.env.CI === 'true')
    throw new Error(`The PostgreSQL suites cannot run under CI=true: ${postgresSkipReason}`);
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING the PostgreSQL suites: ${postgresSkipReason}.\n${'!'.repeat(72)}\n`);
}

async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const asRoot = process.getuid?.() === 0;

/** Runs one of PostgreSQL's programs, as SERVER_USER when we are root. */
function pgCommand(program: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN ?? '', program);
  return asRoot ? ['runuser', ['-u', SERVER_USER, '--', path, ...args]] : [path, args];
}

async function runPg(program: string, args: string[]): Promise<void> {
  const [command, full] = pgCommand(program, args);
  await execFileAsync(command, full, { timeout: 60_000 });
}

/** A server certificate and its key (PEM), for a server that speaks TLS. */
export interface TestTls {
  cert: string;
  key: string;
}

export class TestPostgres {
  private stopped = true;
  private readonly onExit = () => this.stopNow();
  private tlsOptions = '';
  /** The superuser's password, when the server asks for one. */
  private password = '';

  private constructor(
    readonly dir: string,
    public port: number,
  ) {}

  /**
   * Creates the cluster and starts it; `stop()` then `start()` bring it down and back on the same port.
   * With `tls` it accepts TLS connections too, with that certificate; with `password` it asks for it
   * (scram-sha-256) instead of trusting every local connection.
   */
  static async create({ tls, password }: { tls?: TestTls; password?: string } = {}): Promise<TestPostgres> {
    if (!PG_BIN) throw new Error(postgresSkipReason);
    const dir = await mkdtemp(join(tmpdir(), 'softy-pinko-postgres-'));
    const owner = asRoot
      ? {
          uid: Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim()),
          gid: Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim()),
        }
      : undefined;
    if (owner) await chown(dir, owner.uid, owner.gid);
    const server = new TestPostgres(dir, 0);
    try {
      if (tls) {
        // The server refuses a key others can read, so it is the server user's and mode 600.
        const [cert, key] = [join(dir, 'server.crt'), join(dir, 'server.key')];
        await writeFile(cert, tls.cert);
        await writeFile(key, tls.key, { mode: 0o600 });
        if (owner) await Promise.all([cert, key].map((file) => chown(file, owner.uid, owner.gid)));
        server.tlsOptions = ` -c ssl=on -c ssl_cert_file=${cert} -c ssl_key_file=${key}`;
      }
      const auth = ['--auth=trust'];
      if (password) {
        const pwfile = join(dir, 'pwfile');
        await writeFile(pwfile, `${password}\n`);
        if (owner) await chown(pwfile, owner.uid, owner.gid);
        auth.splice(0, 1, '--auth=scram-sha-256', `--pwfile=${pwfile}`);
        server.password = password;
      }
      await runPg('initdb', ['-D', server.dataDir, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-locale']);
      // Another process may grab the probed port before the server binds it: try a fresh one.
      for (let attempt = 1; ; attempt++) {
        server.port = await freeLoopbackPort();
        try {
          await server.start();
          break;
        } catch (error) {
          if (attempt === 3) throw error;
        }
      }
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return server;
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  private get logFile(): string {
    return join(this.dir, 'server.log');
  }

  /** The connection string of one database on this server (with trust auth, no password). */
  url(database = 'postgres'): string {
    const user = this.password ? `postgres:${encodeURIComponent(this.password)}` : 'postgres';
    return `postgresql://${user}@127.0.0.1:${this.port}/${database}`;
  }

  async start(): Promise<void> {
    // fsync off: the crash safety of a throwaway test cluster is not under test, and the disk is shared.
    const options = `-k ${this.dir} -p ${this.port} -h 127.0.0.1 -c fsync=off -c max_connections=200${this.tlsOptions}`;
    try {
      await runPg('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '30', '-o', options, 'start']);
    } catch (error) {
      const log = await readFile(this.logFile, 'utf8').catch(() => '');
      throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${log.slice(-2000)}`, { cause: error });
    }
    this.stopped = false;
    process.once('exit', this.onExit);
  }

  /** Stops the server at once, as a crash or a pulled cable would: open connections break. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    await runPg('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    this.stopped = true;
    process.off('exit', this.onExit);
  }

  /** Synchronous stop for process exit, so an aborted run leaves no server behind. */
  private stopNow(): void {
    if (this.stopped) return;
    const [command, full] = pgCommand('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(command, full, { stdio: 'ignore', timeout: 10_000 });
    } catch {
      // Nothing more can be done while the process exits.
    }
    this.stopped = true;
  }

  /** A new, empty database on this server, so each test starts from nothing; answers its URL. */
  async createDatabase(prefix = 'test'): Promise<string> {
    const name = `${prefix}_${randomBytes(6).toString('hex')}`;
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${name}`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Stops the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs one statement on its own connection; answers its rows. */
export async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

/**
 * One server for the whole test file, started before its tests and removed after them.
 * Returns a function giving the server; call it inside tests or hooks only.
 */
export function usePostgres(): () => TestPostgres {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    if (postgresSkipReason) return;
    server = await TestPostgres.create();
  }, 120_000);
  afterAll(async () => {
    await server?.destroy();
    server = undefined;
  }, 60_000);
  return () => {
    if (!server) throw new Error('usePostgres: the server exists only while the file runs');
    return server;
  };
}
