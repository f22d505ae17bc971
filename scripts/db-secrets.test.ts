/**
 * `npm run secrets:db`: every checkout gets a database password of its own, and the PostgreSQL override
 * refuses to start without one, naming the command (no password from the repository ever protects a database).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, dockerWorks } from './lib/stack.js';

const execFileAsync = promisify(execFile);
const makeSecrets = (dir: string) => execFileAsync('bash', [join(REPO_ROOT, 'scripts/db-secrets.sh'), dir]);

describe('npm run secrets:db', () => {
  it('writes a random password and the URL holding it, keeps them on a second run, differs per checkout', async () => {
    const [a, b] = await Promise.all([mkdtemp(join(tmpdir(), 'db-secrets-')), mkdtemp(join(tmpdir(), 'db-secrets-'))]);
    await Promise.all([makeSecrets(a), makeSecrets(b)]);
    const password = (await readFile(join(a, 'postgres-password'), 'utf8')).trim();
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect(await readFile(join(a, 'database-url'), 'utf8')).toBe(
      `postgresql://softy:${password}@db:5432/softy_pinko\n`,
    );
    expect((await stat(a)).mode & 0o777).toBe(0o700);
    expect((await readFile(join(b, 'postgres-password'), 'utf8')).trim()).not.toBe(password);
    const { stdout } = await makeSecrets(a);
    expect(stdout).toMatch(/kept the secrets already in/);
    expect((await readFile(join(a, 'postgres-password'), 'utf8')).trim()).toBe(password);
  });

  it('is what the PostgreSQL override asks for when its secrets are missing', async () => {
    if (!(await dockerWorks())) {
      if (process.env.CI === 'true') throw new Error('docker compose is needed under CI=true');
      return;
    }
    const files = ['-f', 'docker-compose.yml', '-f', 'docker-compose.postgres.yml'];
    // An empty env file: as on a fresh clone, whatever this checkout's .env says.
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
    const failure = await execFileAsync('docker', ['compose', '--env-file', '/dev/null', ...files, 'config'], {
      cwd: REPO_ROOT,
      env,
    }).catch((error: { stderr: string }) => error);
    // Compose names whichever of the two secrets it happens to interpolate first.
    expect('stderr' in failure && failure.stderr).toMatch(
      /required variable (POSTGRES_PASSWORD|DATABASE_URL)_SECRET is missing a value: run `npm run secrets:db` first/,
    );
  });
});
