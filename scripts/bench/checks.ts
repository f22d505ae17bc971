/** One target of `npm run bench`: a measured value, how it must compare with its limit, and the verdict. */
export interface Check {
  what: string;
  value: number;
  op: '≥' | '≤' | '<';
  limit: number;
  unit: string;
}

export const check = (what: string, value: number, op: Check['op'], limit: number, unit = '×'): Check => ({
  what,
  value,
  op,
  limit,
  unit,
});

export const passes = (c: Check): boolean =>
  c.op === '≥' ? c.value >= c.limit : c.op === '≤' ? c.value <= c.limit : c.value < c.limit;

/**
 * The value with two decimals, or with as many more as it takes for the printed number to land on the
 * same side of the limit as the real one: 0.7992 against ≥ 0.8 is "0.799", never a failing "0.80".
 */
export function shownValue(c: Check): string {
  for (let digits = 2; digits <= 6; digits += 1) {
    const text = c.value.toFixed(digits);
    if (passes({ ...c, value: Number(text) }) === passes(c)) return text;
  }
  return String(c.value);
}

export const verdict = (c: Check): string =>
  `${c.what} **${shownValue(c)}${c.unit}** ${c.op} ${c.limit}${c.unit} ${passes(c) ? '✅ pass' : '❌ FAIL'}`;
