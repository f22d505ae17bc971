/**
 * The stack without Docker: the back-end on an internal port, and Vite on one public port serving the
 * page and proxying /api to the back-end — the same URLs as behind nginx.
 *   npm start      built files: `vite preview` + `node back-end/dist/server.js` (run `npm run build` first)
 *   npm run dev    hot reload:  `vite` + `tsx watch back-end/src/server.ts`
 * PORT (default 8080) is the site's port; BACKEND_PORT (default 5252) the back-end's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dev = process.argv.includes('--dev');
const sitePort = process.env.PORT ?? '8080';
const backendPort = process.env.BACKEND_PORT ?? '5252';
const bin = (name: string) => `${root}node_modules/.bin/${name}`;

const services: { name: string; command: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv }[] = [
  {
    name: 'back-end',
    command: dev ? bin('tsx') : process.execPath,
    args: dev ? ['watch', 'src/server.ts'] : ['dist/server.js'],
    cwd: `${root}back-end`,
    // Loopback only: without Docker the back-end is reached through Vite's proxy, like through nginx.
    env: { PORT: backendPort, HOST: '127.0.0.1', NODE_ENV: dev ? 'development' : 'production' },
  },
  {
    name: 'front-end',
    command: bin('vite'),
    args: dev ? [] : ['preview'],
    cwd: `${root}front-end`,
    env: { PORT: sitePort, BACKEND_PORT: backendPort },
  },
];

const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  process.exitCode = code;
}

for (const service of services) {
  const child = spawn(service.command, service.args, {
    cwd: service.cwd,
    env: { ...process.env, ...service.env },
    stdio: 'inherit',
  });
  child.on('exit', (code, signal) => {
    // One service gone means the site is broken: stop the other one too, and say why.
    if (!stopping) console.error(`[start] ${service.name} exited (${signal ?? `code ${code}`}); stopping`);
    stopAll(code ?? 1);
  });
  children.push(child);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stopAll(0));
const mode = dev ? '(dev, hot reload)' : '';
console.log(`[start] Softy Pinko ${mode} on http://localhost:${sitePort} — Ctrl+C stops it`);
