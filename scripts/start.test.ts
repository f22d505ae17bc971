/** `npm start` and `npm run dev` as a user runs them: one port serves the page and proxies /api. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from './lib/stack.js';

const root = fileURLToPath(new URL('..', import.meta.url));

async function waitFor(url: string, deadline: number): Promise<Response> {
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return res;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer in time`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.each([
  ['npm start', ['start'], /\/assets\/main-[\w-]+\.js/],
  ['npm run dev', ['run', 'dev'], /\/src\/main\.ts/],
])('%s', (_name, npmArgs, scriptTag) => {
  it('serves the page and /api on one port, and stops cleanly on SIGTERM', async () => {
    const [sitePort, backendPort] = [await freePort(), await freePort()];
    // detached: the npm → tsx → node chain gets its own process group, so the test can end all of it.
    const child = spawn('npm', npmArgs, {
      cwd: root,
      env: { ...process.env, PORT: String(sitePort), BACKEND_PORT: String(backendPort) },
      stdio: 'ignore',
      detached: true,
    });
    const exited = once(child, 'exit');
    try {
      const deadline = Date.now() + 90_000;
      const hello = await waitFor(`http://127.0.0.1:${sitePort}/api/hello`, deadline);
      expect(await hello.text()).toBe('Hello, World!');
      const page = await (await waitFor(`http://127.0.0.1:${sitePort}/`, deadline)).text();
      expect(page).toContain('id="dynamic-content"');
      expect(page).toMatch(scriptTag);
      expect((await fetch(`http://127.0.0.1:${sitePort}/no/such/page`)).status).toBe(404);
      // The back-end runs on BACKEND_PORT, the one the site proxies /api to.
      await expect(fetch(`http://127.0.0.1:${backendPort}/api/hello`)).resolves.toHaveProperty('status', 200);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await expect(fetch(`http://127.0.0.1:${sitePort}/`)).rejects.toThrow();
    await expect(fetch(`http://127.0.0.1:${backendPort}/api/hello`)).rejects.toThrow();
  });
});
