import { describe, expect, it } from 'vitest';
import { passes, shownValue, verdict, type Check } from './checks.js';

const ratio = (value: number, op: Check['op'] = '≥', limit = 0.8): Check => ({
  what: 'req/s',
  value,
  op,
  limit,
  unit: '×',
});

describe('bench checks', () => {
  it('compares with the limit the way each operator says', () => {
    expect(passes(ratio(0.8))).toBe(true);
    expect(passes(ratio(0.7999))).toBe(false);
    expect(passes(ratio(2.5, '≤', 2.5))).toBe(true);
    expect(passes(ratio(2.51, '≤', 2.5))).toBe(false);
    expect(passes({ what: 'memory', value: 80, op: '<', limit: 80, unit: ' MiB' })).toBe(false);
  });

  it('prints two decimals when they tell the truth', () => {
    expect(shownValue(ratio(0.7556))).toBe('0.76');
    expect(shownValue(ratio(0.8312))).toBe('0.83');
    expect(shownValue(ratio(1.2681, '≤', 2.5))).toBe('1.27');
  });

  it('prints more decimals rather than a rounded value on the wrong side of the limit', () => {
    // A rounded "0.80× ≥ 0.8× ❌ FAIL" reads as a contradiction.
    expect(shownValue(ratio(0.7992249911055753))).toBe('0.799');
    expect(shownValue(ratio(0.79996))).toBe('0.79996');
    expect(shownValue(ratio(2.504, '≤', 2.5))).toBe('2.504');
    expect(shownValue({ what: 'memory', value: 79.996, op: '<', limit: 80, unit: ' MiB' })).toBe('79.996');
  });

  it('states the verdict next to the value', () => {
    expect(verdict(ratio(0.7992249911055753))).toBe('req/s **0.799×** ≥ 0.8× ❌ FAIL');
    expect(verdict(ratio(0.85))).toBe('req/s **0.85×** ≥ 0.8× ✅ pass');
  });
});
