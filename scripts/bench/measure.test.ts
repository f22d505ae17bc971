import { describe, expect, it } from 'vitest';
import { info, margin, pairedRatio, passes, row, shownValue, target, verdict, type Check } from './measure.js';

const ratio = (value: number, op: Check['op'] = '≥', limit = 0.8): Check => ({
  what: 'req/s',
  value,
  op,
  limit,
  unit: '×',
});

/** A target with one run per round at the given req/s (p99 twice the round's index). */
function measured(rps: number[]) {
  const t = target('x', 'http://x/');
  t.runs.push(...rps.map((r, i) => ({ rps: r, p50Ms: 1, p99Ms: 2 * (i + 1), errors: 0 })));
  return t;
}

describe('bench checks', () => {
  it('compare with the limit the way each operator says', () => {
    expect(passes(ratio(0.8))).toBe(true);
    expect(passes(ratio(0.7999))).toBe(false);
    expect(passes(ratio(2.5, '≤', 2.5))).toBe(true);
    expect(passes(ratio(2.51, '≤', 2.5))).toBe(false);
    expect(passes({ what: 'memory', value: 80, op: '<', limit: 80, unit: ' MiB' })).toBe(false);
  });

  it('print more decimals rather than a rounded value on the wrong side of the limit', () => {
    expect(shownValue(ratio(0.7556))).toBe('0.76');
    expect(shownValue(ratio(0.7992249911055753))).toBe('0.799');
    expect(shownValue(ratio(0.79996))).toBe('0.79996');
    expect(shownValue(ratio(2.504, '≤', 2.5))).toBe('2.504');
  });

  it('state the verdict and the margin inside or outside the limit', () => {
    expect(margin(ratio(0.88))).toBe('+10 %');
    expect(margin(ratio(1.5, '≤', 2.5))).toBe('+40 %');
    expect(margin({ what: 'memory', value: 88, op: '<', limit: 80, unit: ' MiB' })).toBe('−10 %');
    expect(verdict(ratio(0.88))).toBe('req/s **0.88×** ≥ 0.8× ✅ pass, margin +10 %');
    expect(verdict(ratio(0.7992249911055753))).toBe('req/s **0.799×** ≥ 0.8× ❌ FAIL (−0 %)');
  });
});

describe('paired ratios', () => {
  it('take the median of the per-round ratios, not the ratio of the medians', () => {
    const [a, b] = [measured([1900, 1100, 2000]), measured([1000, 500, 900])];
    // Per-round ratios 1.9, 2.2, 2.22: their median decides, not 1900 / 900.
    expect(pairedRatio(a, b)).toBeCloseTo(2.2);
    expect(pairedRatio(a, b, 'p99Ms')).toBe(1);
    expect(info(3, a, b)).toBe('vs #3: req/s **2.20×** (information)');
  });

  it('show a row of medians with its notes', () => {
    expect(row(4, measured([1000, 3000, 2000]), 'reference')).toBe('| 4 | x | 2,000 | 1.00 ms | 4.00 ms | reference |');
  });
});
