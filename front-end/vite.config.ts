import { defineConfig } from 'vite';
import { beasties } from 'vite-plugin-beasties';
import { loadAfterFirstPaint } from './plugins/after-first-paint';
import { cspHashes } from './plugins/csp-hashes';

// Without Docker the Vite server stands in for the proxy: /api goes to the back-end, the rest is the page.
const apiTarget = `http://127.0.0.1:${process.env.BACKEND_PORT ?? '5252'}`;
const apiProxy = { '/api': { target: apiTarget, changeOrigin: false, xfwd: true } };

export default defineConfig({
  // A multi-page site, not a single-page app: unknown paths get a 404, as behind nginx.
  appType: 'mpa',
  build: {
    // dist/html is the site; dist/nginx holds what nginx needs to know about it (csp-hashes.conf).
    outDir: 'dist/html',
    // The page must work in every browser people still use; es2022 keeps the bundle small without a polyfill.
    target: 'es2022',
    // Source maps stay out of the shipped image.
    sourcemap: false,
    assetsInlineLimit: 0,
    // Two pages: the site, and the 404 page nginx answers unknown paths with.
    rollupOptions: { input: { main: 'index.html', notFound: '404.html' } },
  },
  plugins: [
    // The first screen's CSS goes into each page, so the first paint needs nothing but the document.
    // Every rule that matches the page is critical; a rest smaller than minimumExternalSize (today the page's
    // JavaScript-set states, under 1 KB) is inlined too: a request of its own would cost more than its bytes.
    // A larger rest stays a file, linked at the end of the body (the 404 page's, with the site's sections).
    // Silent: beasties also writes each pruned sheet to disk before Vite has written any (ENOENT, harmless: the
    // plugin updates the bundle); plugins/csp-hashes.test.ts checks what the pages really hold.
    beasties({
      options: { pruneSource: true, minimumExternalSize: 4096, preload: 'body', logLevel: 'silent' },
    }),
    loadAfterFirstPaint(),
    cspHashes('../nginx/csp-hashes.conf'),
  ],
  server: { port: Number(process.env.PORT ?? 8080), strictPort: true, proxy: apiProxy },
  preview: { port: Number(process.env.PORT ?? 8080), strictPort: true, proxy: apiProxy },
});
