/**
 * The page's script, loaded once the first paint is on screen: an inline module (allowed by its hash, see
 * csp-hashes.ts) imports the bundle Vite would have linked. Nothing the script does is needed for the first
 * frame (greeting, form checks, menu, motion: the page works without them), so neither its request nor its
 * work stands before that frame on a slow phone.
 */
import type { Plugin } from 'vite';

const ENTRY = /<script type="module" crossorigin src="(\/assets\/[\w.-]+\.js)"><\/script>/;

/** The inline loader for `src`: on the first paint timing entry, or at once where there is no paint timing. */
export const loader = (src: string): string =>
  `const load=()=>import(${JSON.stringify(src)});` +
  'PerformanceObserver.supportedEntryTypes?.includes("paint")' +
  '?new PerformanceObserver((_,o)=>{o.disconnect();load()}).observe({type:"paint",buffered:!0}):load()';

export function loadAfterFirstPaint(): Plugin {
  return {
    name: 'load-after-first-paint',
    apply: 'build',
    transformIndexHtml: {
      // After Vite has written the hashed bundle's <script src>.
      order: 'post',
      handler(html) {
        const entry = ENTRY.exec(html);
        return entry ? html.replace(entry[0], `<script type="module">${loader(entry[1]!)}</script>`) : html;
      },
    },
  };
}
