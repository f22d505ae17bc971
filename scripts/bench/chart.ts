/** The bench's ratio checks as one small SVG bar chart (docs/bench-ratios.svg, embedded in BENCHMARKS.md). */
import { passes, shownValue, type Check } from './checks.js';

export interface ChartRow {
  label: string;
  check: Check;
}

/** Bars end at this ratio (the naive proxy's 10× would squash the rest); the figure is printed anyway. */
const CLIP = 3;
const [LABEL_WIDTH, BAR_WIDTH, ROW_HEIGHT, TOP] = [300, 330, 26, 34];

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const x = (ratio: number): number => LABEL_WIDTH + (Math.min(ratio, CLIP) / CLIP) * BAR_WIDTH;

function bar({ label, check }: ChartRow, index: number): string {
  const y = TOP + index * ROW_HEIGHT;
  const colour = passes(check) ? '#2e8b57' : '#c9302c';
  const end = x(check.value);
  return [
    `<text x="${LABEL_WIDTH - 8}" y="${y + 17}" text-anchor="end">${escape(label)}</text>`,
    `<rect x="${LABEL_WIDTH}" y="${y + 5}" width="${(end - LABEL_WIDTH).toFixed(1)}" height="16" fill="${colour}"/>`,
    `<line x1="${x(check.limit)}" x2="${x(check.limit)}" y1="${y + 1}" y2="${y + 25}" stroke="#222"` +
      ' stroke-dasharray="3 2"/>',
    `<text x="${(end + 4).toFixed(1)}" y="${y + 17}">` +
      `${escape(`${shownValue(check)}× (${check.op} ${check.limit})`)}</text>`,
  ].join('\n');
}

/** One bar per ratio check (unit ×): green passes, red fails, the dashed line is the limit. */
export function ratioChart(rows: ChartRow[], title: string): string {
  const ratios = rows.filter((row) => row.check.unit === '×');
  const height = TOP + ratios.length * ROW_HEIGHT + 10;
  const width = LABEL_WIDTH + BAR_WIDTH + 100;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"` +
      ' font-family="sans-serif" font-size="13">',
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="8" y="20" font-weight="bold">${escape(title)}</text>`,
    ...ratios.map(bar),
    '</svg>',
    '',
  ].join('\n');
}
