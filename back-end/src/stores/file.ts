import { constants } from 'node:fs';
import { access, mkdir, open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { StoreUnavailableError, type AppendResult, type ContactMessage, type ContactStore } from './types.js';

interface Pending {
  message: ContactMessage;
  resolve: (result: AppendResult) => void;
  reject: (error: Error) => void;
}

const NEWLINE = 0x0a;

/** Where a reader reports the lines it skipped; stderr when absent. */
export type Warn = (message: string) => void;

const toStderr: Warn = (message) => process.stderr.write(`${message}\n`);

/** A stored line's message, or undefined for a line that is not one (a partial write that was never acknowledged). */
function parseLine(line: string): ContactMessage | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === 'object' && value !== null && typeof (value as ContactMessage).id === 'string'
      ? (value as ContactMessage)
      : undefined;
  } catch {
    return undefined;
  }
}

function unavailable(error: unknown): StoreUnavailableError {
  const reason = error instanceof Error ? error.message : String(error);
  return new StoreUnavailableError(`the message file cannot be written: ${reason}`, { cause: error });
}

/**
 * Appends one JSON line per message to a JSON-lines file, with group commit: the messages that arrive while
 * one write and datasync run are queued, then go out together in one write and one datasync, and each is
 * acknowledged only after it. One write() per batch on an O_APPEND handle keeps lines whole, also when
 * several processes (replicas on one machine) share the file.
 *
 * Idempotency keys are learnt from the file itself, in file order: all of it when it is first opened (so a
 * restart remembers them), then whatever any process appended since, after each batch's write. The first
 * line with a key is the message stored under it. Two replicas taking a new key in the same instant may both
 * write a line, but both read the file back after their datasync and answer with the first line; readers
 * skip the later ones. (A datasync flushes the whole file, so that first line is durable too.)
 *
 * The file is opened on the first append: an app that never receives a message never touches the disk.
 */
export function createFileStore(path: string, warn: Warn = toStderr): ContactStore {
  // Resolved now, so a later chdir cannot move the file.
  const file = resolve(path);
  let handle: FileHandle | undefined;
  /** Bytes at the start of the file whose keys are already in `stored`; always at a line boundary. */
  let scanned = 0;
  // After a failed write the file may end in a partial line; the next batch starts on a fresh line.
  let mayEndMidLine = false;
  /** The file's size after our last batch (its keys learnt), so the next batch needs no read before writing. */
  let sizeAfterLastBatch: number | undefined;
  /** The first stored message of each idempotency key seen in the file. */
  const stored = new Map<string, ContactMessage>();
  const inFlight = new Map<string, Promise<AppendResult>>();
  let queue: Pending[] = [];
  let flushing: Promise<void> | undefined;

  function learn(message: ContactMessage | undefined): void {
    const key = message?.idempotencyKey;
    if (message && key !== undefined && !stored.has(key)) stored.set(key, message);
  }

  async function openFile(): Promise<FileHandle> {
    if (handle) return handle;
    await mkdir(dirname(file), { recursive: true });
    // a+: appends always go to the end, and the file can be read back for its keys.
    handle = await open(file, 'a+');
    scanned = 0;
    sizeAfterLastBatch = undefined;
    return handle;
  }

  /** Learns the keys of whole lines appended since the last look, by any process; answers the file's size. */
  async function catchUp(current: FileHandle, size?: number): Promise<number> {
    size ??= (await current.stat()).size;
    if (size <= scanned) return size;
    const buffer = Buffer.alloc(size - scanned);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await current.read(buffer, filled, buffer.length - filled, scanned + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A line still being written (or cut off by a failed write) is read once it ends.
    const end = buffer.lastIndexOf(NEWLINE, filled - 1);
    if (end < 0) return size;
    for (const line of buffer.subarray(0, end).toString('utf8').split('\n')) learn(parseLine(line));
    scanned += end + 1;
    return size;
  }

  async function writeBatch(batch: Pending[]): Promise<void> {
    let current: FileHandle | undefined;
    try {
      current = await openFile();
      // Lines another process added since our last batch are learnt after this write, before any answer.
      const before = sizeAfterLastBatch ?? (await catchUp(current));
      const fresh: Pending[] = [];
      for (const entry of batch) {
        const key = entry.message.idempotencyKey;
        const earlier = key === undefined ? undefined : stored.get(key);
        if (earlier) entry.resolve({ message: earlier, created: false });
        else fresh.push(entry);
      }
      if (fresh.length === 0) return;
      // A partial line at the end (ours or another process's) must not swallow the first line of this batch.
      const freshLine = mayEndMidLine || scanned < before ? '\n' : '';
      const bytes = Buffer.from(freshLine + fresh.map((entry) => `${JSON.stringify(entry.message)}\n`).join(''));
      let written = 0;
      while (written < bytes.length) {
        written += (await current.write(bytes, written, bytes.length - written)).bytesWritten;
      }
      // The size is read while the datasync runs: the write is done, so it counts our lines.
      const [, { size: after }] = await Promise.all([current.datasync(), current.stat()]);
      mayEndMidLine = false;
      if (scanned === before && after === before + bytes.length) {
        // Nobody else wrote in between: our lines follow what we had read, in this order.
        for (const entry of fresh) learn(entry.message);
        scanned = after;
      } else {
        await catchUp(current, after);
      }
      sizeAfterLastBatch = after;
      for (const entry of fresh) {
        const key = entry.message.idempotencyKey;
        const first = key === undefined ? entry.message : stored.get(key);
        // Our line must have been read back whole; otherwise it is not acknowledged.
        if (!first) throw new Error('a stored line could not be read back');
        entry.resolve({ message: first, created: first.id === entry.message.id });
      }
    } catch (error) {
      mayEndMidLine = true;
      sizeAfterLastBatch = undefined;
      // A handle that failed once (disk full, volume gone) is not trusted again: the next batch reopens.
      if (current) {
        handle = undefined;
        await current.close().catch(() => undefined);
      }
      // Entries already answered ignore this; the rest were not acknowledged and may be sent again.
      const failure = unavailable(error);
      for (const entry of batch) entry.reject(failure);
    }
  }

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      await writeBatch(batch);
    }
    flushing = undefined;
  }

  function append(message: ContactMessage): Promise<AppendResult> {
    const key = message.idempotencyKey;
    if (key !== undefined) {
      const earlier = stored.get(key);
      if (earlier) return Promise.resolve({ message: earlier, created: false });
      const waiting = inFlight.get(key);
      if (waiting) return waiting.then((result) => ({ message: result.message, created: false }));
    }
    const result = new Promise<AppendResult>((resolve, reject) => queue.push({ message, resolve, reject }));
    if (key !== undefined) {
      inFlight.set(key, result);
      const forget = () => inFlight.delete(key);
      result.then(forget, forget);
    }
    flushing ??= flush();
    return result;
  }

  return {
    kind: 'file',
    append,
    list: () => readContactMessages(file, warn),
    async ready() {
      try {
        // The folders are made on the first append; until then the nearest existing one must be writable.
        let dir = dirname(file);
        for (;;) {
          const found = await stat(dir).catch((error: NodeJS.ErrnoException) => {
            if (error.code === 'ENOENT' && dirname(dir) !== dir) return undefined;
            throw error;
          });
          if (found) {
            if (!found.isDirectory()) throw new Error(`${dir} is not a directory`);
            await access(dir, constants.W_OK);
            return;
          }
          dir = dirname(dir);
        }
      } catch (error) {
        throw unavailable(error);
      }
    },
    async close() {
      while (flushing) await flushing;
      const current = handle;
      handle = undefined;
      await current?.close();
    },
  };
}

/**
 * Reads every stored message back (the store's list, `messages`, the import, the backup). A line that is not
 * a message is skipped with a warning naming its line number, and the others are still read: a torn last
 * line is a write that failed (a full disk) and was never acknowledged; one in the middle is such a line the
 * writer has since written past, or damage an operator should look at. A missing file means no messages yet.
 * A later line with an idempotency key already seen is a repeat that was never answered as new: skipped.
 */
export async function readContactMessages(path: string, warn: Warn = toStderr): Promise<ContactMessage[]> {
  let text: string;
  try {
    text = await readFile(resolve(path), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseContactMessages(text, path, warn);
}

/** The messages in a JSON-lines text, as `readContactMessages` reads them; `source` names it in warnings. */
export function parseContactMessages(text: string, source: string, warn: Warn = toStderr): ContactMessage[] {
  const keys = new Set<string>();
  const messages: ContactMessage[] = [];
  const lines = text.split('\n');
  // Without a final newline the last line was still being written, or cut off by a failed write.
  const torn = lines.length - 1;
  lines.forEach((line, index) => {
    // Blank lines are the fresh-line guard after a failed write, not records.
    if (line.trim() === '') return;
    const message = parseLine(line);
    if (!message) {
      const what = index === torn ? 'a torn last line (a write cut off, never acknowledged)' : 'a damaged line';
      // Its length, not its text: a message holds someone's name and address.
      warn(`${source}:${index + 1}: skipped ${what}, ${Buffer.byteLength(line)} bytes`);
      return;
    }
    const key = message.idempotencyKey;
    if (key !== undefined) {
      if (keys.has(key)) return;
      keys.add(key);
    }
    messages.push(message);
  });
  return messages;
}
