/**
 * The operators' command for stored contact messages, in whichever store the environment selects (as the
 * server does: DATABASE_URL or DATABASE_URL_FILE, else CONTACT_STORE_PATH):
 *
 *   messages [list]          every message as one JSON line, oldest first
 *   messages import FILE     copy a JSON-lines file into PostgreSQL, keeping ids; run it again and nothing doubles
 *
 * `npm run messages` on a checkout; `docker compose exec back-end node dist/cli/messages.js` in a stack.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openContactStore, readContactMessages, storeSelectionFromEnv, type ContactStore } from '../contact-store.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  err: (line: string) => void;
}

const USAGE = 'usage: messages [list] | messages import FILE.jsonl';

export async function listMessages(store: ContactStore, out: CliIo['out']): Promise<number> {
  const messages = await store.list();
  for (const message of messages) out(JSON.stringify(message));
  return messages.length;
}

/** Appends each message of `file` with its own id, time and key; the store skips any it already holds. */
export async function importMessages(
  store: ContactStore,
  file: string,
  warn?: CliIo['err'],
): Promise<{ imported: number; alreadyThere: number }> {
  const messages = await readContactMessages(file, warn);
  let imported = 0;
  // One at a time, in the file's order: received_at keeps the order anyway, and an operator can rerun it.
  for (const message of messages) {
    if ((await store.append(message)).created) imported += 1;
  }
  return { imported, alreadyThere: messages.length - imported };
}

/** Runs the command; answers the exit code. Every failure is one line on stderr. */
export async function main(args: string[], io: CliIo): Promise<number> {
  const [command = 'list', ...rest] = args;
  if (!['list', 'import'].includes(command) || (command === 'list' && rest.length > 0)) {
    io.err(USAGE);
    return 2;
  }
  if (command === 'import' && rest.length !== 1) {
    io.err(USAGE);
    return 2;
  }
  let store: ContactStore | undefined;
  try {
    const selection = storeSelectionFromEnv(io.env);
    if (command === 'import' && !('databaseUrl' in selection)) {
      io.err('messages import: set DATABASE_URL or DATABASE_URL_FILE to the PostgreSQL database to import into');
      return 2;
    }
    store = await openContactStore(selection, { warn: io.err });
    if (command === 'list') {
      const count = await listMessages(store, io.out);
      io.err(`${count} message(s) in the ${store.kind} store`);
    } else {
      // npm runs the workspace script in back-end/; INIT_CWD is where the operator typed the command.
      const file = resolve(io.env.INIT_CWD ?? process.cwd(), rest[0]!);
      const { imported, alreadyThere } = await importMessages(store, file, io.err);
      io.err(`imported ${imported} message(s) into PostgreSQL; ${alreadyThere} were there already`);
    }
    return 0;
  } catch (error) {
    io.err(`messages ${command}: ${(error as Error).message}`);
    return 1;
  } finally {
    await store?.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2), {
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}
