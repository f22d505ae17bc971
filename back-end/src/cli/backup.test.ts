/** The file store's backup and restore, with the store serving: a consistent copy, and nothing twice. */
import { randomUUID } from 'node:crypto';
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileStore, readContactMessages } from '../stores/file.js';
import type { ContactMessage } from '../stores/types.js';
import { aMessage } from '../testing/messages.js';
import { useTempDir } from '../testing/temp-dir.js';
import { backupFile, main, restoreFile } from './backup.js';

const tempDir = useTempDir('backup-cli');
const quiet = { err: () => undefined };

async function backup(path: string): Promise<string> {
  const chunks: Buffer[] = [];
  await backupFile(path, quiet, (chunk) => chunks.push(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

describe('the file store backup', () => {
  it('holds every message acknowledged before it started, taken while appends go on', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const acknowledged: ContactMessage[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const message = aMessage({ idempotencyKey: randomUUID() });
        await store.append(message);
        acknowledged.push(message);
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = [...acknowledged];
    const copy = await backup(path);
    stop = true;
    await Promise.all(writers);
    await store.close();
    expect(before.length).toBeGreaterThan(10);
    const backedUp = new Map(readLines(copy).map((message) => [message.idempotencyKey, message.id]));
    for (const message of before) expect(backedUp.get(message.idempotencyKey)).toBe(message.id);
    expect(copy.endsWith('\n')).toBe(true);
  });

  it('leaves out a torn last line, with a warning', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const kept = aMessage();
    await appendFile(path, `${JSON.stringify(kept)}\n{"id":"cut of`);
    const warnings: string[] = [];
    const chunks: Buffer[] = [];
    expect(await backupFile(path, { err: (line) => warnings.push(line) }, (chunk) => chunks.push(chunk))).toBe(1);
    expect(Buffer.concat(chunks).toString()).toBe(`${JSON.stringify(kept)}\n`);
    // Cut at the last newline: the torn bytes are not even read as a line.
    expect(warnings).toEqual([]);
  });
});

describe('the file store restore', () => {
  it('brings back every message with its id and key into a lost volume; a repeated key then counts once', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const messages = [aMessage({ idempotencyKey: randomUUID() }), aMessage()];
    for (const message of messages) await store.append(message);
    await store.close();
    const copy = await backup(path);
    await rm(path);

    // Meanwhile the new, empty store took a message of its own.
    const fresh = createFileStore(path);
    const newer = aMessage();
    await fresh.append(newer);
    expect(await restoreFile(path, copy, 'backup', quiet)).toEqual({ restored: 2, alreadyThere: 0 });
    // Once more: nothing doubles.
    expect(await restoreFile(path, copy, 'backup', quiet)).toEqual({ restored: 0, alreadyThere: 2 });
    // The serving store learns the restored keys: the first message's key sent again is answered from it.
    expect(await fresh.append(aMessage({ idempotencyKey: messages[0]!.idempotencyKey! }))).toEqual({
      message: messages[0],
      created: false,
    });
    await fresh.close();
    expect(await readContactMessages(path)).toEqual([newer, ...messages]);
  });

  it('answers a wrong command with the usage', async () => {
    const err: string[] = [];
    const code = await main(['list'], { env: {}, out: () => undefined, err: (line) => err.push(line) }, () => {});
    expect(code).toBe(2);
    expect(err[0]).toMatch(/^usage: /);
  });
});

function readLines(text: string): ContactMessage[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ContactMessage);
}
