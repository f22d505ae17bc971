/**
 * `npm run backup` and `npm run restore`: one command each, for whichever store the Compose stack uses.
 * - PostgreSQL (the override's `db` service): `pg_dump --format=custom` from the db container, while it serves;
 *   restore stops the back-end, `pg_restore --clean --single-transaction`s into the database, runs `migrate`
 *   (a dump older than the image gets the newer migrations) and starts the back-end again.
 * - The JSON-lines file: a one-shot back-end container copies the file's whole lines while it serves; restore
 *   appends the messages the store lacks, ids and keys kept, also while it serves.
 *
 *   npm run backup [-- [-f FILE]… [-p PROJECT] [--out DIR]]      writes DIR/softy-pinko-<store>-<time>.<dump|jsonl>
 *   npm run restore -- BACKUP [-f FILE]… [-p PROJECT]
 */
import { mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Compose } from './lib/compose.js';
import type { Redirect } from './lib/run.js';

interface ComposeConfig {
  services: Record<string, { environment?: Record<string, string | null> }>;
}

const say = (message: string): void => console.error(message);

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
  const stack = new Compose({ files: values.file, project: values['project-name'] });
  const compose = (args: string[], io: Redirect = {}) => stack.execLoud(args, io);
  const config = await stack.merged<ComposeConfig>();
  const db = config.services.db;
  const store = db ? 'postgres' : 'file';
  const user = db?.environment?.POSTGRES_USER ?? 'postgres';
  const database = db?.environment?.POSTGRES_DB ?? user;
  const started = performance.now();
  const seconds = () => ((performance.now() - started) / 1000).toFixed(1);

  if (command === 'backup' && positionals.length === 0) {
    // INIT_CWD: where the operator typed `npm run backup`.
    const dir = resolve(process.env.INIT_CWD ?? process.cwd(), values.out);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const time = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const file = `${dir}/softy-pinko-${store}-${time}.${store === 'postgres' ? 'dump' : 'jsonl'}`;
    if (store === 'postgres') {
      await compose(['exec', '-T', 'db', 'pg_dump', `--username=${user}`, `--dbname=${database}`, '--format=custom'], {
        stdout: file,
      });
    } else {
      await compose(['run', '--rm', '--no-deps', '-T', 'back-end', 'node', 'dist/cli/backup.js', 'backup'], {
        stdout: file,
      });
    }
    say(`backup: wrote ${file} (${statSync(file).size} bytes) in ${seconds()} s`);
  } else if (command === 'restore' && positionals.length === 1) {
    const file = resolve(process.env.INIT_CWD ?? process.cwd(), positionals[0]!);
    if (file.endsWith('.dump') !== (store === 'postgres')) {
      throw new Error(`${file} is not a backup of the ${store} store (.dump is PostgreSQL's, .jsonl the file's)`);
    }
    if (store === 'postgres') {
      // Nothing writes while the tables are replaced; the back-ends come back on the restored data.
      await compose(['stop', 'back-end']);
      await compose(['up', '--detach', '--wait', 'db']);
      await compose(
        ['exec', '-T', 'db', 'pg_restore', `--username=${user}`, `--dbname=${database}`].concat([
          '--clean',
          '--if-exists',
          '--no-owner',
          '--single-transaction',
          '--exit-on-error',
        ]),
        { stdin: file },
      );
      if (config.services.migrate) await compose(['run', '--rm', '--no-deps', '-T', 'migrate']);
      await compose(['start', 'back-end']).catch(() => compose(['up', '--detach', '--wait']));
    } else {
      await compose(['run', '--rm', '--no-deps', '-T', 'back-end', 'node', 'dist/cli/backup.js', 'restore'], {
        stdin: file,
      });
    }
    say(`restore: ${file} (${statSync(file).size} bytes) into the ${store} store in ${seconds()} s`);
  } else {
    throw new Error('usage: npm run backup [-- -f FILE… -p PROJECT --out DIR] | npm run restore -- BACKUP [-f FILE…]');
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`${process.argv[2] ?? 'backup'}: ${(error as Error).message}`);
  process.exit(1);
});
