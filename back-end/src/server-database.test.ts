/** Start-up with a database URL: a bad one, or a database that refuses us, stops the process with one line. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { postgresSkipReason, usePostgres } from './testing/postgres.js';

const server = usePostgres();

async function start(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./server.ts', import.meta.url))], {
    env: { ...process.env, HOST: '127.0.0.1', DATABASE_URL: '', DATABASE_URL_FILE: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr, stdout };
}

it('refuses to start on a bad DATABASE_URL with one line that names it, not the password', async () => {
  const { code, stderr } = await start({ DATABASE_URL: 'postgresql://softy:hunter2-secret@db:5432' });
  expect(code).toBe(1);
  expect(stderr).toMatch(/^could not start: DATABASE_URL names no database, got "postgresql:\/\/softy:\*\*\*@db:5432"/);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(stderr).not.toContain('hunter2');
}, 30_000);

it.skipIf(postgresSkipReason !== '')(
  'refuses to start on a database that does not exist, in one line without the password',
  async () => {
    const url = `postgresql://postgres:hunter2-secret@127.0.0.1:${server().port}/no_such_database`;
    const { code, stderr } = await start({ DATABASE_URL: url });
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /^could not start: PostgreSQL at postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/no_such_database /,
    );
    expect(stderr).toContain('does not exist');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toContain('hunter2');
  },
  30_000,
);
