// @vitest-environment node
/**
 * The real build (vite.config.ts, into a temp dir): each page holds its critical CSS inline, nothing but the
 * document is needed for the first paint, the nginx snippet allows exactly the inline elements by hash, and
 * the compressed page fits the first round trip of a new TCP connection.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cspHash, cspHashesSnippet, inlineHashes } from './csp-hashes';

const FRONT_END = fileURLToPath(new URL('..', import.meta.url));
/** TCP's initial window is 10 segments of 1460 bytes: 14,600 bytes, of which the headers take about 600. */
const FIRST_ROUND_TRIP_BYTES = 14_000;

let out = '';
const page = { index: '', notFound: '' };
let snippet = '';

/** The hashes a value in the snippet lists, e.g. $csp_style_hashes. */
function listed(variable: string): string[] {
  const value = new RegExp(`map "" \\$${variable} \\{\\s*default "([^"]*)";`).exec(snippet)?.[1];
  if (value === undefined) throw new Error(`no ${variable} in the snippet:\n${snippet}`);
  return value.split(' ').filter(Boolean);
}

/** The text of every inline <style> of a page. */
const styles = (html: string): string[] => [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
const head = (html: string): string => html.slice(0, html.indexOf('</head>'));

/** Whether the snippet allows every inline element of `html`: what the browser checks against the CSP. */
const allowed = (html: string): boolean => {
  const { styles: styleHashes, scripts } = inlineHashes(html);
  return (
    styleHashes.every((hash) => listed('csp_style_hashes').includes(hash)) &&
    scripts.every((hash) => listed('csp_script_hashes').includes(hash))
  );
};

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'softy-pinko-build-'));
  await build({
    root: FRONT_END,
    configFile: join(FRONT_END, 'vite.config.ts'),
    logLevel: 'silent',
    build: { outDir: join(out, 'html'), emptyOutDir: true },
  });
  page.index = readFileSync(join(out, 'html', 'index.html'), 'utf8');
  page.notFound = readFileSync(join(out, 'html', '404.html'), 'utf8');
  snippet = readFileSync(join(out, 'nginx', 'csp-hashes.conf'), 'utf8');
}, 60_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the built page', () => {
  it('holds the CSS of its first screen in one <style> in the head, and links no stylesheet', () => {
    const [css, ...more] = styles(page.index);
    expect(more).toEqual([]);
    expect(head(page.index)).toContain(`<style>${css}</style>`);
    // The tokens, the header, and the hero in its final place and style.
    for (const rule of [
      ':root{--ink:#1e1e1e',
      'body{',
      '.site-header{',
      '.header-pill{',
      '.hero{',
      '.hero-title{',
      '.hero-title strong{font-weight:800}',
      '.hero-lead{',
      '.btn-pink{',
    ])
      expect(css, rule).toContain(rule);
    // The rest (JavaScript-set states, reduced motion) is under minimumExternalSize: inlined, not a request.
    expect(css).toContain('.has-motion [data-reveal].is-pending{');
    expect(css).toContain('@media (prefers-reduced-motion:reduce)');
    expect(page.index).not.toMatch(/<link[^>]+rel="?(stylesheet|preload)/);
    // Its only script is an inline module that imports the bundle once the first paint is on screen.
    expect(head(page.index).match(/<script\b[^>]*>[^<]*<\/script>/g)).toEqual([
      expect.stringMatching(/^<script type="module">const load=\(\)=>import\("\/assets\/main-[\w-]+\.js"\);/),
    ]);
  });

  it('fits, compressed, in the first round trip of a new connection', () => {
    const compressed = gzipSync(page.index, { level: 9 }).length;
    console.log(`[budget] index.html: ${page.index.length} bytes, ${compressed} gzipped`);
    expect(compressed).toBeLessThanOrEqual(FIRST_ROUND_TRIP_BYTES);
  });

  it('gives the 404 page its own critical CSS, and its rest at the end of the body, after the content', () => {
    const [css] = styles(page.notFound);
    expect(css).toContain('.nf-code{');
    expect(css).toContain('.page-404{');
    expect(css).not.toContain('.pricing');
    expect(head(page.notFound)).not.toMatch(/<link[^>]+rel="?stylesheet/);
    expect(page.notFound).toMatch(
      /<\/footer>\s*<link rel="stylesheet" crossorigin href="\/assets\/notFound-[\w-]+\.css"><\/body>/,
    );
  });
});

describe('the CSP hashes written for nginx', () => {
  it('list the SHA-256 of each page’s inline style and script, and nothing else', () => {
    const expected = [...styles(page.index), ...styles(page.notFound)].map(cspHash);
    expect(listed('csp_style_hashes').sort()).toEqual([...new Set(expected)].sort());
    const [, loader] = /<script type="module">([^<]+)<\/script>/.exec(page.index)!;
    expect(listed('csp_script_hashes')).toEqual([cspHash(loader!)]);
    expect(allowed(page.index)).toBe(true);
    expect(allowed(page.notFound)).toBe(true);
  });

  it('no longer allow the inline style once one byte of it changes', () => {
    const [css] = styles(page.index);
    const changed = css!.replace('--ink:#1e1e1e', '--ink:#1e1e1f');
    expect(changed).not.toBe(css);
    expect(allowed(page.index.replace(css!, changed))).toBe(false);
  });
});

describe('inlineHashes', () => {
  it('hashes the text of inline <style> and <script> elements as browsers do, not <script src>', () => {
    const html = '<style>a{color:red}</style><script type="module" src="/x.js"></script><script>go()</script>';
    expect(inlineHashes(html)).toEqual({ styles: [cspHash('a{color:red}')], scripts: [cspHash('go()')] });
    // echo -n 'a{color:red}' | openssl dgst -sha256 -binary | base64
    expect(cspHash('a{color:red}')).toBe("'sha256-6hWWMOcF+mJesSJGYhmK2lkIIEw9Xc5XKGLPVzh8yxs='");
  });

  it('refuses inline style and event attributes, which no hash can allow', () => {
    expect(() => inlineHashes('<p style="color:red">x</p>')).toThrow(/cannot be allowed by a hash/);
    expect(() => inlineHashes('<link rel="stylesheet" href="/a.css" onload="this.media=\'all\'">')).toThrow(
      /cannot be allowed by a hash/,
    );
  });

  it('writes an empty list as an empty value, so the policy keeps just its own sources', () => {
    expect(cspHashesSnippet({ styles: [], scripts: [] })).toContain('map "" $csp_script_hashes {\n    default "";');
  });
});
