/**
 * Back up and restore the JSON-lines file store, while it serves (PostgreSQL's are pg_dump and pg_restore:
 * scripts/backup.ts runs either in a stack). `npm run backup` / `npm run restore` drive this in Compose.
 *
 *   backup            the store's whole lines, as they are now, to stdout: a JSON-lines file
 *   restore [FILE]    the messages of a backup (stdin without FILE) that the store lacks, ids and keys kept
 *
 * `docker compose run --rm --no-deps -T back-end node dist/cli/backup.js backup > backup.jsonl`
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { pathToFileURL } from 'node:url';
import { contactStorePathFromEnv } from '../contact-store.js';
import { createFileStore, parseContactMessages, readContactMessages } from '../stores/file.js';
import type { CliIo } from './messages.js';

const USAGE = 'usage: backup.js backup > FILE.jsonl | backup.js restore [FILE.jsonl]';
const NEWLINE = 0x0a;
/** Appends in flight at once: the store sends them in a few large batches, each with one datasync. */
const RESTORE_BATCH = 2_000;

/**
 * The file's whole lines as they are at this moment: every message acknowledged before it is in them, since
 * the store datasyncs before it answers, and appends are whole write()s. A line still being written (or
 * torn by a failed write) at the end is left out; damaged lines are checked and reported, not copied.
 */
export async function backupFile(
  path: string,
  io: Pick<CliIo, 'err'>,
  write: (chunk: Buffer) => void,
): Promise<number> {
  const file = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!file) return 0;
  try {
    const { size } = await file.stat();
    const buffer = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await file.read(buffer, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const whole = buffer.subarray(0, buffer.lastIndexOf(NEWLINE, filled - 1) + 1);
    const messages = parseContactMessages(whole.toString('utf8'), path, io.err);
    // The lines themselves, not re-serialised: a backup is the store's own bytes.
    write(whole);
    return messages.length;
  } finally {
    await file.close();
  }
}

/** Appends the backup's messages the store lacks (same id or key), keeping ids, times and keys. */
export async function restoreFile(
  path: string,
  backup: string,
  source: string,
  io: Pick<CliIo, 'err'>,
): Promise<{ restored: number; alreadyThere: number }> {
  const messages = parseContactMessages(backup, source, io.err);
  const present = await readContactMessages(path, io.err);
  const ids = new Set(present.map((message) => message.id));
  const missing = messages.filter((message) => !ids.has(message.id));
  const store = createFileStore(path, io.err);
  let restored = 0;
  try {
    for (let i = 0; i < missing.length; i += RESTORE_BATCH) {
      const results = await Promise.all(missing.slice(i, i + RESTORE_BATCH).map((message) => store.append(message)));
      restored += results.filter((result) => result.created).length;
    }
  } finally {
    await store.close();
  }
  return { restored, alreadyThere: messages.length - restored };
}

export async function main(args: string[], io: CliIo, stdout: (chunk: Buffer) => void): Promise<number> {
  const [command, file, ...rest] = args;
  if (rest.length > 0 || (command === 'backup' && file) || (command !== 'backup' && command !== 'restore')) {
    io.err(USAGE);
    return 2;
  }
  const path = contactStorePathFromEnv(io.env);
  try {
    if (command === 'backup') {
      const count = await backupFile(path, io, stdout);
      io.err(`backed up ${count} message(s) from ${path}`);
    } else {
      const backup = await text(file ? createReadStream(file) : process.stdin);
      const { restored, alreadyThere } = await restoreFile(path, backup, file ?? 'stdin', io);
      io.err(`restored ${restored} message(s) into ${path}; ${alreadyThere} were there already`);
    }
    return 0;
  } catch (error) {
    io.err(`backup ${command}: ${(error as Error).message}`);
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(
    process.argv.slice(2),
    {
      env: process.env,
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
    },
    (chunk) => process.stdout.write(chunk),
  );
}
