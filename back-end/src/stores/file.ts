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
  return new FileStore(resolve(path), warn);
}

/** createFileStore's store: the state of the open file and of the queue of messages waiting for a batch. */
class FileStore implements ContactStore {
  readonly kind = 'file';
  private handle: FileHandle | undefined;
  /** Bytes at the start of the file whose keys are already in `stored`; always at a line boundary. */
  private scanned = 0;
  // After a failed write the file may end in a partial line; the next batch starts on a fresh line.
  private mayEndMidLine = false;
  /** The file's size after our last batch (its keys learnt), so the next batch needs no read before writing. */
  private sizeAfterLastBatch: number | undefined;
  /** The first stored message of each idempotency key seen in the file. */
  private readonly stored = new Map<string, ContactMessage>();
  private readonly inFlight = new Map<string, Promise<AppendResult>>();
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly file: string,
    private readonly warn: Warn,
  ) {}

  private learn(message: ContactMessage | undefined): void {
    const key = message?.idempotencyKey;
    if (message && key !== undefined && !this.stored.has(key)) this.stored.set(key, message);
  }

  private async openFile(): Promise<FileHandle> {
    if (this.handle) return this.handle;
    await mkdir(dirname(this.file), { recursive: true });
    // a+: appends always go to the end, and the file can be read back for its keys.
    this.handle = await open(this.file, 'a+');
    this.scanned = 0;
    this.sizeAfterLastBatch = undefined;
    return this.handle;
  }

  /** Learns the keys of whole lines appended since the last look, by any process; answers the file's size. */
  private async catchUp(current: FileHandle, size?: number): Promise<number> {
    size ??= (await current.stat()).size;
    if (size <= this.scanned) return size;
    const buffer = Buffer.alloc(size - this.scanned);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await current.read(buffer, filled, buffer.length - filled, this.scanned + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    // A line still being written (or cut off by a failed write) is read once it ends.
    const end = buffer.lastIndexOf(NEWLINE, filled - 1);
    if (end < 0) return size;
    for (const line of buffer.subarray(0, end).toString('utf8').split('\n')) this.learn(parseLine(line));
    this.scanned += end + 1;
    return size;
  }

  /** The entries whose key is not stored yet; the others are answered with the message stored under it. */
  private answerRepeats(batch: Pending[]): Pending[] {
    const fresh: Pending[] = [];
    for (const entry of batch) {
      const key = entry.message.idempotencyKey;
      const earlier = key === undefined ? undefined : this.stored.get(key);
      if (earlier) entry.resolve({ message: earlier, created: false });
      else fresh.push(entry);
    }
    return fresh;
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    let current: FileHandle | undefined;
    try {
      current = await this.openFile();
      // Lines another process added since our last batch are learnt after this write, before any answer.
      const before = this.sizeAfterLastBatch ?? (await this.catchUp(current));
      const fresh = this.answerRepeats(batch);
      if (fresh.length === 0) return;
      // A partial line at the end (ours or another process's) must not swallow the first line of this batch.
      const freshLine = this.mayEndMidLine || this.scanned < before ? '\n' : '';
      const bytes = Buffer.from(freshLine + fresh.map((entry) => `${JSON.stringify(entry.message)}\n`).join(''));
      let written = 0;
      while (written < bytes.length) {
        written += (await current.write(bytes, written, bytes.length - written)).bytesWritten;
      }
      // The size is read while the datasync runs: the write is done, so it counts our lines.
      const [, { size: after }] = await Promise.all([current.datasync(), current.stat()]);
      this.mayEndMidLine = false;
      await this.learnBatch(current, fresh, before, after, bytes.length);
    } catch (error) {
      await this.failBatch(current, batch, error);
    }
  }

  /** Learns the file after our write of `length` bytes, then answers each fresh entry with its key's first line. */
  private async learnBatch(current: FileHandle, fresh: Pending[], before: number, after: number, length: number) {
    if (this.scanned === before && after === before + length) {
      // Nobody else wrote in between: our lines follow what we had read, in this order.
      for (const entry of fresh) this.learn(entry.message);
      this.scanned = after;
    } else {
      await this.catchUp(current, after);
    }
    this.sizeAfterLastBatch = after;
    for (const entry of fresh) {
      const key = entry.message.idempotencyKey;
      const first = key === undefined ? entry.message : this.stored.get(key);
      // Our line must have been read back whole; otherwise it is not acknowledged.
      if (!first) throw new Error('a stored line could not be read back');
      entry.resolve({ message: first, created: first.id === entry.message.id });
    }
  }

  private async failBatch(current: FileHandle | undefined, batch: Pending[], error: unknown): Promise<void> {
    this.mayEndMidLine = true;
    this.sizeAfterLastBatch = undefined;
    // A handle that failed once (disk full, volume gone) is not trusted again: the next batch reopens.
    if (current) {
      this.handle = undefined;
      await current.close().catch(() => undefined);
    }
    // Entries already answered ignore this; the rest were not acknowledged and may be sent again.
    const failure = unavailable(error);
    for (const entry of batch) entry.reject(failure);
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      await this.writeBatch(batch);
    }
    this.flushing = undefined;
  }

  append(message: ContactMessage): Promise<AppendResult> {
    const key = message.idempotencyKey;
    if (key !== undefined) {
      const earlier = this.stored.get(key);
      if (earlier) return Promise.resolve({ message: earlier, created: false });
      const waiting = this.inFlight.get(key);
      if (waiting) return waiting.then((result) => ({ message: result.message, created: false }));
    }
    const result = new Promise<AppendResult>((resolve, reject) => this.queue.push({ message, resolve, reject }));
    if (key !== undefined) {
      this.inFlight.set(key, result);
      const forget = () => this.inFlight.delete(key);
      result.then(forget, forget);
    }
    this.flushing ??= this.flush();
    return result;
  }

  list(): Promise<ContactMessage[]> {
    return readContactMessages(this.file, this.warn);
  }

  async ready(): Promise<void> {
    try {
      // The folders are made on the first append; until then the nearest existing one must be writable.
      let dir = dirname(this.file);
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
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    const current = this.handle;
    this.handle = undefined;
    await current?.close();
  }
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
