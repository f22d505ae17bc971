import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnv, previousRelease, readReleases, recordRelease, releasesFile, type Release } from './release.js';
import { run } from './stack.js';

describe('buildEnv: every build named by its commit', () => {
  let repo: string;
  const git = async (...args: string[]) => (await run('git', args, { cwd: repo })).stdout.trim();

  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'softy-pinko-release-'));
    await git('init', '--quiet');
    writeFileSync(join(repo, 'a.txt'), 'one\n');
    writeFileSync(join(repo, '.gitignore'), 'ignored.txt\n');
    await git('add', '.');
    await git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'first');
  });

  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('names a clean tree by its short commit, with the full one and the commit time as labels', async () => {
    writeFileSync(join(repo, 'ignored.txt'), 'not part of any build\n');
    const release = await buildEnv({}, repo);
    const head = await git('rev-parse', 'HEAD');
    expect(release.TAG).toBe(head.slice(0, 12));
    expect(release.VERSION).toBe(release.TAG);
    expect(release.REVISION).toBe(head);
    expect(release.CREATED).toBe(await git('show', '--no-patch', '--format=%cI', 'HEAD'));
  });

  it('names a changed tree -dirty plus its content, so two different changes never share a tag', async () => {
    const head = (await git('rev-parse', 'HEAD')).slice(0, 12);
    writeFileSync(join(repo, 'a.txt'), 'two\n');
    const first = await buildEnv({}, repo);
    expect(first.TAG).toMatch(new RegExp(`^${head}-dirty-[0-9a-f]{8}$`));
    expect(first.REVISION).toMatch(/-dirty$/);
    expect((await buildEnv({}, repo)).TAG, 'the same change, the same tag').toBe(first.TAG);
    writeFileSync(join(repo, 'new.txt'), 'an untracked file is part of the build\n');
    const second = await buildEnv({}, repo);
    expect(second.TAG).not.toBe(first.TAG);
    expect(await git('status', '--porcelain'), 'the real index is left alone').toBe('M a.txt\n?? new.txt');
  });

  it('sees a same-size edit made in the second of the commit, however late it is asked', async () => {
    writeFileSync(join(repo, 'b.txt'), 'one\n');
    await git('add', '--all');
    await git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'second');
    // Same size, same second as the index: only the file's content tells them apart.
    writeFileSync(join(repo, 'b.txt'), 'two\n');
    await setTimeout(1100);
    expect((await buildEnv({}, repo)).TAG).toMatch(/-dirty-/);
  });

  it('takes TAG and the labels from the environment when given', async () => {
    const release = await buildEnv({ TAG: 'chosen', REVISION: 'r1' }, repo);
    expect(release).toMatchObject({ TAG: 'chosen', REVISION: 'r1', VERSION: 'unknown', CREATED: 'unknown' });
  });
});

describe('the releases log', () => {
  const release = (tag: string): Release => ({ tag, at: new Date().toISOString(), images: { proxy: `id-${tag}` } });

  it('goes back to the newest release with another tag than the current one', () => {
    expect(previousRelease([])).toBeUndefined();
    expect(previousRelease([release('a')])).toBeUndefined();
    expect(previousRelease([release('a'), release('a')])).toBeUndefined();
    expect(previousRelease([release('a'), release('b')])?.tag).toBe('a');
    // After a rollback to a, the one before is b again: two rollbacks undo each other.
    expect(previousRelease([release('a'), release('b'), release('a')])?.tag).toBe('b');
  });

  it('appends one line per release and reads them back in order', () => {
    const project = `softy-pinko-release-test-${process.pid}`;
    try {
      recordRelease(project, release('a'));
      recordRelease(project, { ...release('b'), rollback: true });
      expect(readReleases(project).map((r) => [r.tag, r.rollback ?? false])).toEqual([
        ['a', false],
        ['b', true],
      ]);
    } finally {
      rmSync(releasesFile(project), { force: true });
    }
  });
});
