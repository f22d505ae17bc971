/**
 * `npm run backup [-- -f FILE… -p PROJECT --out DIR]` and `npm run restore -- BACKUP [-f FILE…]`, for whichever
 * store the Compose stack uses: pg_dump / pg_restore for PostgreSQL, whole lines for the file (docs/stores.md).
 */
import { mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Compose } from './lib/compose.js';
import type { Redirect } from './lib/run.js';

type ComposeConfig = { services: Record<string, { environment?: Record<string, string | null> }> };

const say = (message: string): void => console.error(message);

/** The Compose files and project named on the command line, and the store (PostgreSQL with a `db` service). */
async function targetOf(values: { file: string[]; 'project-name'?: string }) {
  const stack = new Compose({ files: values.file, project: values['project-name'] });
  const config = await stack.merged<ComposeConfig>();
  const compose = (args: string[], io: Redirect = {}) => stack.execLoud(args, io);
  const db = config.services.db;
  const user = db?.environment?.POSTGRES_USER ?? 'postgres';
  const store: 'postgres' | 'file' = db ? 'postgres' : 'file';
  return { compose, config, store, user, database: db?.environment?.POSTGRES_DB ?? user };
}
type Target = Awaited<ReturnType<typeof targetOf>>;

/** Writes the store's backup into `dir`; returns the file's path. */
async function backup({ compose, store, user, database }: Target, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const time = new Date().toISOString().replace(/[-:]|\.\d+/g, ''); // 20260101T031700Z
  const file = `${dir}/softy-pinko-${store}-${time}.${store === 'postgres' ? 'dump' : 'jsonl'}`;
  const dump = ['exec', '-T', 'db', 'pg_dump', `--username=${user}`, `--dbname=${database}`, '--format=custom'];
  const copy = ['run', '--rm', '--no-deps', '-T', 'back-end', 'node', 'dist/cli/backup.js', 'backup'];
  await compose(store === 'postgres' ? dump : copy, { stdout: file });
  return file;
}

/** Restores `file` into the store, refusing a backup of the other store. */
async function restore({ compose, config, store, user, database }: Target, file: string): Promise<void> {
  if (file.endsWith('.dump') !== (store === 'postgres')) {
    throw new Error(`${file} is not a backup of the ${store} store (.dump is PostgreSQL's, .jsonl the file's)`);
  }
  if (store === 'file') {
    const args = ['run', '--rm', '--no-deps', '-T', 'back-end', 'node', 'dist/cli/backup.js', 'restore'];
    return compose(args, { stdin: file });
  }
  // Nothing writes while the tables are replaced; the back-ends come back on the restored data.
  await compose(['stop', 'back-end']);
  await compose(['up', '--detach', '--wait', 'db']);
  const pgRestore = ['exec', '-T', 'db', 'pg_restore', `--username=${user}`, `--dbname=${database}`];
  const options = ['--clean', '--if-exists', '--no-owner', '--single-transaction', '--exit-on-error'];
  await compose([...pgRestore, ...options], { stdin: file });
  if (config.services.migrate) await compose(['run', '--rm', '--no-deps', '-T', 'migrate']);
  await compose(['start', 'back-end']).catch(() => compose(['up', '--detach', '--wait']));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      file: { type: 'string', short: 'f', multiple: true, default: [] },
      'project-name': { type: 'string', short: 'p' },
      out: { type: 'string', default: 'backups' },
    },
  });
  const target = await targetOf(values);
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
  // INIT_CWD: where the operator typed `npm run backup`.
  const here = process.env.INIT_CWD ?? process.cwd();
  if (command === 'backup' && positionals.length === 0) {
    const file = await backup(target, resolve(here, values.out));
    say(`backup: wrote ${file} (${statSync(file).size} bytes) in ${seconds()} s`);
  } else if (command === 'restore' && positionals.length === 1) {
    const file = resolve(here, positionals[0]!);
    await restore(target, file);
    say(`restore: ${file} (${statSync(file).size} bytes) into the ${target.store} store in ${seconds()} s`);
  } else {
    throw new Error('usage: npm run backup [-- -f FILE… -p PROJECT --out DIR] | npm run restore -- BACKUP [-f FILE…]');
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`${process.argv[2] ?? 'backup'}: ${(error as Error).message}`);
  process.exit(1);
});
