import { describe, expect, it } from 'vitest';
import { ratioChart } from './chart.js';
import { check } from './checks.js';

describe('ratio chart', () => {
  const svg = ratioChart(
    [
      { label: 'API <via> proxy ÷ direct', check: check('req/s', 0.65, '≥', 0.6) },
      { label: 'back-end ÷ stock Fastify', check: check('req/s', 0.85, '≥', 0.9) },
      { label: 'memory', check: check('MiB', 70, '<', 80, ' MiB') },
    ],
    'npm run bench & co',
  );

  it('draws one bar per ratio check, green when it passes and red when it fails', () => {
    expect(svg.match(/<rect [^>]*height="16"/g)).toHaveLength(2);
    expect(svg).toContain('fill="#2e8b57"');
    expect(svg).toContain('fill="#c9302c"');
    expect(svg).toContain('0.65× (≥ 0.6)');
    expect(svg).not.toContain('MiB');
  });

  it('escapes text', () => {
    expect(svg).toContain('API &lt;via&gt; proxy');
    expect(svg).toContain('npm run bench &amp; co');
  });
});
