import { defineConfig } from 'vite';

// Without Docker the Vite server stands in for the proxy: /api goes to the back-end, the rest is the page.
const apiTarget = `http://127.0.0.1:${process.env.BACKEND_PORT ?? '5252'}`;
const apiProxy = { '/api': { target: apiTarget, changeOrigin: false, xfwd: true } };

export default defineConfig({
  // A multi-page site, not a single-page app: unknown paths get a 404, as behind nginx.
  appType: 'mpa',
  build: {
    // The page must work in every browser people still use; es2022 keeps the bundle small without a polyfill.
    target: 'es2022',
    // Source maps stay out of the shipped image.
    sourcemap: false,
    assetsInlineLimit: 0,
    // Two pages: the site, and the 404 page nginx answers unknown paths with.
    rollupOptions: { input: { main: 'index.html', notFound: '404.html' } },
  },
  server: { port: Number(process.env.PORT ?? 8080), strictPort: true, proxy: apiProxy },
  preview: { port: Number(process.env.PORT ?? 8080), strictPort: true, proxy: apiProxy },
});
