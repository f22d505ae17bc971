import { randomUUID } from 'node:crypto';
import { open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useTempDir } from '../testing/temp-dir.js';
import { createFileStore, readContactMessages } from './file.js';
import { StoreUnavailableError, type ContactMessage } from './types.js';

const tempDir = useTempDir('file-store');

const aMessage = (text = 'Hello there', idempotencyKey?: string): ContactMessage => ({
  id: randomUUID(),
  receivedAt: new Date().toISOString(),
  name: 'Ada',
  email: 'ada@example.com',
  message: text,
  ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
});

describe('createFileStore', () => {
  it('appends each message as one JSON line, creating the directory it needs', async () => {
    const path = join(tempDir(), 'nested', 'deeper', 'messages.jsonl');
    const store = createFileStore(path);
    const first = aMessage('first');
    const second = aMessage('second, with a\nline break and "quotes"');
    await store.append(first);
    await store.append(second);
    await store.close();

    const text = await readFile(path, 'utf8');
    expect(text.split('\n')).toEqual([JSON.stringify(first), JSON.stringify(second), '']);
  });

  it('does not touch the disk until the first message arrives', async () => {
    const path = join(tempDir(), 'lazy', 'messages.jsonl');
    const store = createFileStore(path);
    await store.close();
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps 50 concurrent appends whole, in the order they were made', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const messages = Array.from({ length: 50 }, (_, i) => aMessage(`message ${i} ${'x'.repeat(i * 40)}`));
    await Promise.all(messages.map((message) => store.append(message)));
    await store.close();
    expect(await readContactMessages(path)).toEqual(messages);
  });

  it('rejects an append it cannot write, and recovers once the disk is writable again', async () => {
    // A file where the directory should be: mkdir fails even for root, unlike chmod.
    const blocked = join(tempDir(), 'blocked');
    await writeFile(blocked, 'not a directory');
    const path = join(blocked, 'messages.jsonl');
    const store = createFileStore(path);

    await expect(store.append(aMessage())).rejects.toThrow(StoreUnavailableError);

    await rm(blocked);
    const later = aMessage('after the fix');
    await store.append(later);
    await store.close();
    expect(await readContactMessages(path)).toEqual([later]);
  });

  it('lets close() wait for appends already queued', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const queued = [aMessage('a'), aMessage('b'), aMessage('c')];
    const appends = queued.map((message) => store.append(message));
    await store.close();
    await Promise.all(appends);
    expect(await readContactMessages(path)).toEqual(queued);
  });

  it('adds to what an earlier store wrote, never replacing it', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const before = aMessage('before a restart');
    const after = aMessage('after a restart');
    const first = createFileStore(path);
    await first.append(before);
    await first.close();
    const second = createFileStore(path);
    await second.append(after);
    await second.close();
    expect(await readContactMessages(path)).toEqual([before, after]);
  });
});

describe('readContactMessages', () => {
  it('reads a missing file as no messages', async () => {
    expect(await readContactMessages(join(tempDir(), 'none.jsonl'))).toEqual([]);
  });

  it('skips a torn last line with a warning, reading every whole line before it', async () => {
    const path = join(tempDir(), 'torn.jsonl');
    const store = createFileStore(path);
    const kept = [aMessage('one', 'key-1'), aMessage('two'), aMessage('three', 'key-3')];
    for (const message of kept) await store.append(message);
    await store.close();
    // Cut the file in the middle of its last line, as a failed write on a full disk leaves it.
    const text = await readFile(path, 'utf8');
    await truncate(path, Buffer.byteLength(text) - 20);
    const warnings: string[] = [];
    const read = await readContactMessages(path, (line) => warnings.push(line));
    expect(read).toEqual(kept.slice(0, 2));
    expect(warnings).toEqual([expect.stringMatching(/torn\.jsonl:3: skipped a torn last line .*, \d+ bytes$/)]);
    // The store lists the same, warning the same way, and still takes messages after it.
    const listWarnings: string[] = [];
    const reopened = createFileStore(path, (line) => listWarnings.push(line));
    expect(await reopened.list()).toEqual(kept.slice(0, 2));
    expect(listWarnings).toEqual(warnings);
    const after = aMessage('after');
    await reopened.append(after);
    await reopened.close();
    expect(await readContactMessages(path, () => undefined)).toEqual([...kept.slice(0, 2), after]);
  });

  it('reports a damaged line in the middle with its line number, and reads the others', async () => {
    const path = join(tempDir(), 'damaged.jsonl');
    const [first, last] = [aMessage('first'), aMessage('last')];
    await writeFile(path, `${JSON.stringify(first)}\n\n{"id":"cut off\n[1,2]\n${JSON.stringify(last)}\n`);
    const warnings: string[] = [];
    expect(await readContactMessages(path, (line) => warnings.push(line))).toEqual([first, last]);
    expect(warnings).toEqual([
      expect.stringMatching(/damaged\.jsonl:3: skipped a damaged line, 14 bytes$/),
      expect.stringMatching(/damaged\.jsonl:4: skipped a damaged line, 5 bytes$/),
    ]);
    // No message text in a warning: it holds someone's name and address.
    expect(warnings.join('')).not.toContain('cut off');
  });
});

describe('group commit', () => {
  afterEach(() => vi.restoreAllMocks());

  /** Spies on every FileHandle's write and datasync (the real ones run); the first datasync waits for `release`. */
  async function watchDisk() {
    const probe = await open(join(tempDir(), 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: () => unknown; datasync: () => Promise<void> };
    await probe.close();
    const events: string[] = [];
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const realDatasync = proto.datasync;
    const writes = vi.spyOn(proto, 'write');
    const datasyncs = vi.spyOn(proto, 'datasync').mockImplementation(async function (this: unknown) {
      const n = datasyncs.mock.calls.length;
      if (n === 1) await held;
      await realDatasync.call(this);
      events.push(`datasync ${n} done`);
    });
    return { events, release, writes, datasyncs };
  }

  it('sends the messages queued during one datasync together, in one write and one datasync', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const disk = await watchDisk();
    const messages = Array.from({ length: 50 }, (_, i) => aMessage(`message ${i}`));
    const acks = messages.map((message, i) => store.append(message).then(() => disk.events.push(`ack ${i}`)));
    // Let the first batch reach its (held) datasync; the other 49 queue behind it meanwhile.
    await vi.waitFor(() => expect(disk.datasyncs).toHaveBeenCalledTimes(1));
    expect(disk.events).toEqual([]);

    disk.release();
    await Promise.all(acks);
    await store.close();
    expect(disk.writes).toHaveBeenCalledTimes(2);
    expect(disk.datasyncs).toHaveBeenCalledTimes(2);
    // Each message is acknowledged only after the datasync of its own batch.
    expect(disk.events.indexOf('ack 0')).toBeGreaterThan(disk.events.indexOf('datasync 1 done'));
    const secondSync = disk.events.indexOf('datasync 2 done');
    for (let i = 1; i < 50; i++) expect(disk.events.indexOf(`ack ${i}`)).toBeGreaterThan(secondSync);
    expect(await readContactMessages(path)).toEqual(messages);
  });

  it('answers a key repeated within one batch from the first message, written once', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const first = aMessage('first', 'key-1');
    const results = await Promise.all([store.append(first), store.append(aMessage('again', 'key-1'))]);
    await store.close();
    expect(results).toEqual([
      { message: first, created: true },
      { message: first, created: false },
    ]);
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1);
  });
});

describe('a file left by an earlier run', () => {
  it('learns its keys, skipping a line cut off by a failed write, and starts on a fresh line', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const kept = aMessage('kept', 'key-kept');
    await writeFile(path, `${JSON.stringify(kept)}\n{"id":"cut off`);
    const store = createFileStore(path);
    expect(await store.append(aMessage('retry', 'key-kept'))).toEqual({ message: kept, created: false });
    const next = aMessage('next');
    await store.append(next);
    await store.close();
    expect(await readFile(path, 'utf8')).toBe(`${JSON.stringify(kept)}\n{"id":"cut off\n${JSON.stringify(next)}\n`);
  });

  it('is read back with later lines of a key skipped: they were repeats, never answered as new', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const first = aMessage('first', 'key-1');
    const other = aMessage('other');
    await writeFile(path, [first, other, aMessage('repeat', 'key-1')].map((m) => `${JSON.stringify(m)}\n`).join(''));
    expect(await readContactMessages(path)).toEqual([first, other]);
  });
});

describe('readiness', () => {
  it('is not ready when the folder cannot be written', async () => {
    const blocked = join(tempDir(), 'blocked');
    await writeFile(blocked, 'not a directory');
    await expect(createFileStore(join(blocked, 'sub', 'messages.jsonl')).ready()).rejects.toThrow(
      /message file cannot be written/,
    );
  });
});
