import { randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONTACT_STORE_PATH,
  contactStorePathFromEnv,
  createContactStore,
  readContactMessages,
  type ContactMessage,
} from './contact-store.js';
import { useTempDir } from './testing/temp-dir.js';

const tempDir = useTempDir('contact-store');

const aMessage = (text = 'Hello there'): ContactMessage => ({
  id: randomUUID(),
  receivedAt: new Date().toISOString(),
  name: 'Ada',
  email: 'ada@example.com',
  message: text,
});

describe('createContactStore', () => {
  it('appends each message as one JSON line, creating the directory it needs', async () => {
    const path = join(tempDir(), 'nested', 'deeper', 'messages.jsonl');
    const store = createContactStore(path);
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
    const store = createContactStore(path);
    await store.close();
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('keeps 50 concurrent appends whole, in the order they were made', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createContactStore(path);
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
    const store = createContactStore(path);

    await expect(store.append(aMessage())).rejects.toThrow();

    await rm(blocked);
    const later = aMessage('after the fix');
    await store.append(later);
    await store.close();
    expect(await readContactMessages(path)).toEqual([later]);
  });

  it('lets close() wait for appends already queued', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createContactStore(path);
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
    const first = createContactStore(path);
    await first.append(before);
    await first.close();
    const second = createContactStore(path);
    await second.append(after);
    await second.close();
    expect(await readContactMessages(path)).toEqual([before, after]);
  });
});

describe('readContactMessages', () => {
  it('reads a missing file as no messages', async () => {
    expect(await readContactMessages(join(tempDir(), 'none.jsonl'))).toEqual([]);
  });

  it('refuses a damaged line instead of skipping it', async () => {
    const path = join(tempDir(), 'damaged.jsonl');
    await writeFile(path, `${JSON.stringify(aMessage())}\n{"id":"cut off\n`);
    await expect(readContactMessages(path)).rejects.toThrow(SyntaxError);
  });
});

describe('contactStorePathFromEnv', () => {
  it('uses CONTACT_STORE_PATH when set', () => {
    expect(contactStorePathFromEnv({ CONTACT_STORE_PATH: '/data/contact-messages.jsonl' })).toBe(
      '/data/contact-messages.jsonl',
    );
  });

  it.each([{}, { CONTACT_STORE_PATH: '' }])('falls back to data/contact-messages.jsonl for %j', (env) => {
    expect(contactStorePathFromEnv(env)).toBe(DEFAULT_CONTACT_STORE_PATH);
    expect(DEFAULT_CONTACT_STORE_PATH).toBe('data/contact-messages.jsonl');
  });
});
