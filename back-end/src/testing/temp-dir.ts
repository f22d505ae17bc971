import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

/**
 * A fresh temporary directory for every test (or, with `perFile`, one for the whole file), removed after
 * it. Call it at the top of a test file, before hooks that use the directory: Vitest runs the after-hooks
 * in reverse, so the directory outlives whatever the later hooks open in it.
 * Returns a function giving the current directory.
 */
export function useTempDir(prefix: string, { perFile = false } = {}): () => string {
  let dir: string | undefined;
  (perFile ? beforeAll : beforeEach)(async () => {
    dir = await mkdtemp(join(tmpdir(), `softy-pinko-${prefix}-`));
  });
  (perFile ? afterAll : afterEach)(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (!dir) throw new Error('useTempDir: the directory exists only while a test runs');
    return dir;
  };
}
