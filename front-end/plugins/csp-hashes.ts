/**
 * The Content-Security-Policy's side of inlining: the SHA-256 of every inline <style> and <script> of the
 * built pages, written as an nginx snippet (`snippets/csp-hashes.conf`) that the front-end's and the
 * proxy's images both include. Their CSP then allows exactly those elements, never 'unsafe-inline'.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Plugin } from 'vite';

export interface InlineHashes {
  styles: string[];
  scripts: string[];
}

/** A CSP source for `text`: the base64 SHA-256 of its UTF-8 bytes, as browsers hash an element's text. */
export const cspHash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

// <style> and <script> are raw-text elements: their text runs, unescaped, to the first closing tag.
const INLINE_ELEMENT = /<(style|script)\b([^>]*)>([\s\S]*?)<\/\1\s*>/gi;
// A hash cannot allow these; they would need 'unsafe-hashes' or 'unsafe-inline'.
const INLINE_ATTRIBUTE = /<[a-z][^>]*\s(?:style|on[a-z]+)\s*=/i;

/** The hashes of a page's inline elements; a <script src> is not inline. Throws on inline attributes. */
export function inlineHashes(html: string): InlineHashes {
  const found: InlineHashes = { styles: [], scripts: [] };
  for (const [, tag, attributes, text] of html.matchAll(INLINE_ELEMENT)) {
    if (tag!.toLowerCase() === 'script' && /\ssrc\s*=/i.test(attributes!)) continue;
    if (text === '') continue;
    found[tag!.toLowerCase() === 'style' ? 'styles' : 'scripts'].push(cspHash(text!));
  }
  const attribute = INLINE_ATTRIBUTE.exec(html);
  if (attribute) throw new Error(`an inline style or event attribute cannot be allowed by a hash: ${attribute[0]}`);
  return found;
}

/** The nginx snippet: two variables the CSP map (nginx/snippets/content-security-policy.conf) appends. */
export function cspHashesSnippet({ styles, scripts }: InlineHashes): string {
  // Each value starts with a space, so an empty one leaves the directive as "'self'" alone.
  const value = (hashes: string[]): string => [...new Set(hashes)].map((hash) => ` ${hash}`).join('');
  return [
    '# Written by the front-end build (front-end/plugins/csp-hashes.ts), never by hand: the SHA-256 of each',
    '# inline <style> and <script> of the built pages, which the Content-Security-Policy allows by hash.',
    `map "" $csp_style_hashes {`,
    `    default "${value(styles)}";`,
    '}',
    `map "" $csp_script_hashes {`,
    `    default "${value(scripts)}";`,
    '}',
    '',
  ].join('\n');
}

/**
 * Hashes the final HTML of every page (after beasties has inlined its CSS) and writes the snippet to `file`,
 * a path relative to the build's outDir (so a build elsewhere, as in the tests, keeps the two together).
 */
export function cspHashes(file: string): Plugin {
  let outDir = 'dist';
  return {
    name: 'csp-hashes',
    apply: 'build',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    // writeBundle sees the pages as they are written, after every plugin's transformIndexHtml.
    writeBundle(_options, bundle) {
      const all: InlineHashes = { styles: [], scripts: [] };
      for (const [name, output] of Object.entries(bundle)) {
        if (output.type !== 'asset' || !name.endsWith('.html')) continue;
        const { styles, scripts } = inlineHashes(output.source.toString());
        all.styles.push(...styles);
        all.scripts.push(...scripts);
      }
      const path = resolve(outDir, file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, cspHashesSnippet(all));
    },
  };
}
