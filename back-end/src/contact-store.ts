import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Where messages go when `CONTACT_STORE_PATH` is not set: next to a local run, under its cwd. */
export const DEFAULT_CONTACT_STORE_PATH = 'data/contact-messages.jsonl';

export interface ContactMessage {
  id: string;
  receivedAt: string;
  name: string;
  email: string;
  message: string;
}

export interface ContactStore {
  /** Resolves only once the message is on disk (written and datasynced); rejects if it is not. */
  append(message: ContactMessage): Promise<void>;
  /** Waits for appends already queued, then releases the file. */
  close(): Promise<void>;
}

/** An empty value counts as unset, so `CONTACT_STORE_PATH=` in a Compose file cannot point at the cwd itself. */
export function contactStorePathFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.CONTACT_STORE_PATH || DEFAULT_CONTACT_STORE_PATH;
}

/**
 * Appends one JSON line per message to a JSON-lines file.
 *
 * Appends run one at a time through a promise queue over a single append-mode handle, so concurrent
 * requests can neither interleave their bytes nor race to open the file. The handle is opened on the
 * first append (an app that never receives a message never touches the disk).
 */
export function createContactStore(path: string): ContactStore {
  // Resolved now, so a later chdir cannot move the file.
  const file = resolve(path);
  let handle: FileHandle | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  // After a failed write the file may end in a partial line; the next line starts on a fresh one,
  // so one bad record cannot corrupt the good one after it.
  let mayEndMidLine = false;

  function enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task);
    // The queue must keep going after a failure; the caller still sees the rejection through `run`.
    queue = run.catch(() => undefined);
    return run;
  }

  async function writeLine(message: ContactMessage): Promise<void> {
    if (!handle) {
      await mkdir(dirname(file), { recursive: true });
      handle = await open(file, 'a');
    }
    const line = `${mayEndMidLine ? '\n' : ''}${JSON.stringify(message)}\n`;
    try {
      await handle.appendFile(line, 'utf8');
      await handle.datasync();
      mayEndMidLine = false;
    } catch (error) {
      mayEndMidLine = true;
      // A handle that failed once (disk full, volume gone) is not trusted again: the next append reopens.
      const failed = handle;
      handle = undefined;
      await failed.close().catch(() => undefined);
      throw error;
    }
  }

  return {
    append: (message) => enqueue(() => writeLine(message)),
    close: () =>
      enqueue(async () => {
        const current = handle;
        handle = undefined;
        await current?.close();
      }),
  };
}

/**
 * Reads every stored message back (tests and operators). Strict on purpose: a damaged line throws
 * rather than being skipped, so nothing goes missing silently. A missing file means no messages yet.
 */
export async function readContactMessages(path: string): Promise<ContactMessage[]> {
  let text: string;
  try {
    text = await readFile(resolve(path), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  // Blank lines are the fresh-line guard after a failed write, not records.
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ContactMessage);
}
