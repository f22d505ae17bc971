import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useTempDir } from '../testing/temp-dir.js';
import { batchedStdout } from './log-stream.js';

const tempDir = useTempDir('log-stream');
let path: string;
let fd: number;
beforeEach(() => {
  path = join(tempDir(), 'out.log');
  fd = openSync(path, 'w');
});
afterEach(() => closeSync(fd));

const written = () => readFileSync(path, 'utf8');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('batched standard output', () => {
  it('holds lines briefly, then writes them all at once, in order', async () => {
    const stream = batchedStdout(fd, { maxPendingChars: 1024, maxDelayMs: 20 });
    stream.write('one\n');
    stream.write('two\n');
    expect(written()).toBe('');
    await sleep(60);
    expect(written()).toBe('one\ntwo\n');
    stream.write('three\n');
    await sleep(60);
    expect(written()).toBe('one\ntwo\nthree\n');
  });

  it('writes at once when the batch is full', () => {
    const stream = batchedStdout(fd, { maxPendingChars: 10, maxDelayMs: 10_000 });
    stream.write('12345\n');
    expect(written()).toBe('');
    stream.write('67890\n');
    expect(written()).toBe('12345\n67890\n');
  });

  it('writes whatever is pending on flushSync, as the exit handler does', () => {
    const stream = batchedStdout(fd, { maxDelayMs: 10_000 });
    stream.write('é ✓ last words\n');
    stream.flushSync();
    expect(written()).toBe('é ✓ last words\n');
  });
});
