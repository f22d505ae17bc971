import { describe, expect, it } from 'vitest';
import { postChecks, postRows, postTargets } from './durable-posts.js';
import { selectedPhases, type Target } from './measure.js';

/** Targets with one run per round at the given req/s. */
function measured(baseline: number[], fileStore: number[], postgres: number[]) {
  const t = postTargets({ baseline: 'http://b', fileStore: 'http://f', postgres: 'http://p' });
  const runs = (x: Target, rps: number[]) =>
    x.runs.push(...rps.map((r) => ({ rps: r, p50Ms: 1, p99Ms: 2, errors: 0 })));
  runs(t.baseline, baseline);
  runs(t.fileStore, fileStore);
  runs(t.postgres, postgres);
  return t;
}

describe('durable-write rows', () => {
  it('post to /api/contact through each proxy, with the POST script', () => {
    const t = measured([], [], []);
    expect(Object.values(t).map((x) => x.url)).toEqual(
      ['http://b', 'http://f', 'http://p'].map((u) => `${u}/api/contact`),
    );
    expect(new Set(Object.values(t).map((x) => x.script.replace(/.*\//, '')))).toEqual(new Set(['wrk-post.lua']));
  });

  it('pass when the file store takes at least twice the baseline, round by round', () => {
    const checks = postChecks(measured([1000, 500, 900], [1900, 1100, 2000], [2000, 1000, 1800]));
    // Per-round ratios 1.9, 2.2, 2.22: their median (2.2) decides, not the medians' ratio (1900 / 900).
    expect(checks.fileStore[0]).toMatchObject({ op: '≥', limit: 2 });
    expect(checks.fileStore[0]!.value).toBeCloseTo(2.2);
    expect(Object.keys(checks)).toEqual(['fileStore']);
  });

  it('show the verdicts next to the rows, against the baseline row', () => {
    const t = measured([1000, 1000, 1000], [2500, 2500, 2500], [1500, 1500, 1500]);
    const lines = postRows(t, postChecks(t), 13);
    expect(lines[1]).toMatch(/^\| 13 \| `POST \/api\/contact`, file store before group commit .* \| 1,000 \|/);
    expect(lines[2]).toContain('vs #13: req/s vs file store before group commit **2.50×** ≥ 2× ✅ pass');
    expect(lines[3]).toContain('vs #13: req/s **1.50×** (information)');
    expect(lines[3]).not.toContain('FAIL');
  });
});

describe('BENCH_ONLY', () => {
  it('selects every phase when unset or empty', () => {
    expect([...selectedPhases(undefined)]).toEqual(['proxy', 'posts']);
    expect([...selectedPhases('')]).toEqual(['proxy', 'posts']);
  });

  it('selects the phases named, comma-separated', () => {
    expect([...selectedPhases('posts')]).toEqual(['posts']);
    expect([...selectedPhases(' proxy , posts ')]).toEqual(['proxy', 'posts']);
  });

  it('refuses a name it does not know', () => {
    expect(() => selectedPhases('post')).toThrow(/unknown post/);
  });
});
