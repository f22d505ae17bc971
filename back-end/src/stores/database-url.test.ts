import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTempDir } from '../testing/temp-dir.js';
import { checkDatabaseUrl, databaseUrlFromEnv, redactDatabaseUrl } from './database-url.js';

const tempDir = useTempDir('database-url');
const GOOD = 'postgresql://softy:p%40ss-w0rd@db:5432/softy_pinko?sslmode=require';

/** The one line start-up would print for `env`. */
function failureOf(env: NodeJS.ProcessEnv): string {
  try {
    databaseUrlFromEnv(env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected databaseUrlFromEnv to throw');
}

describe('databaseUrlFromEnv', () => {
  it('selects no database when neither variable is set, or both are empty', () => {
    expect(databaseUrlFromEnv({})).toBeUndefined();
    expect(databaseUrlFromEnv({ DATABASE_URL: '', DATABASE_URL_FILE: '' })).toBeUndefined();
  });

  it('takes DATABASE_URL as it is', () => {
    expect(databaseUrlFromEnv({ DATABASE_URL: GOOD })).toBe(GOOD);
  });

  it('reads DATABASE_URL_FILE, a secret file ending in a newline', async () => {
    const file = join(tempDir(), 'database-url');
    await writeFile(file, `${GOOD}\n`);
    expect(databaseUrlFromEnv({ DATABASE_URL_FILE: file })).toBe(GOOD);
  });

  it.each([
    [
      'postgresql://softy:hunter2-secret@db:5432',
      /^DATABASE_URL names no database, got "postgresql:\/\/softy:\*\*\*@db:5432"/,
    ],
    ['mysql://softy:hunter2-secret@db/softy', /^DATABASE_URL must start with postgresql:\/\/ or postgres:\/\//],
    ['postgresql://softy:hunter2-secret@db/softy?sslmode=requir', /^DATABASE_URL has sslmode=requir; use one of/],
    ['postgresql:///softy?password=hunter2-secret', /^DATABASE_URL names no host, got ".*password=\*\*\*"/],
    [
      'softy:hunter2-secret@db/softy',
      /^DATABASE_URL must start with postgresql:\/\/ or postgres:\/\/, got a softy: URL/,
    ],
    ['postgresql://softy:hunter2-secret@/softy', /^DATABASE_URL is not a URL \(value not shown/],
    ['postgresql://softy:hunter2-secret@db:port/softy', /^DATABASE_URL is not a URL/],
  ])('stops start-up on %s with one line that names the variable, never the password', (url, expected) => {
    const message = failureOf({ DATABASE_URL: url });
    expect(message).toMatch(expected);
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('\n');
    expect(message).toContain('postgresql://user:password@db:5432/softy_pinko');
  });

  it('names DATABASE_URL_FILE and its path when the file holds a bad URL or cannot be read', async () => {
    const file = join(tempDir(), 'database-url');
    await writeFile(file, 'postgres://softy:hunter2-secret@db\n');
    expect(failureOf({ DATABASE_URL_FILE: file })).toMatch(
      new RegExp(`^DATABASE_URL_FILE \\(${file}\\) names no database`),
    );
    expect(failureOf({ DATABASE_URL_FILE: file })).not.toContain('hunter2');
    expect(failureOf({ DATABASE_URL_FILE: join(tempDir(), 'missing') })).toMatch(
      /^DATABASE_URL_FILE names .*missing, which cannot be read: ENOENT/,
    );
    await writeFile(file, `${GOOD}\n${GOOD}\n`);
    expect(failureOf({ DATABASE_URL_FILE: file })).toMatch(/must hold exactly one line/);
  });

  it('names sslrootcert and its path when the CA file cannot be read, without the password', async () => {
    const ca = join(tempDir(), 'ca.pem');
    const url = (path: string) =>
      `postgresql://softy:hunter2-secret@db/softy_pinko?sslmode=verify-full&sslrootcert=${path}`;
    expect(failureOf({ DATABASE_URL: url(ca) })).toMatch(
      new RegExp(`^DATABASE_URL has sslrootcert=${ca}, which cannot be read \\(ENOENT\\)`),
    );
    expect(failureOf({ DATABASE_URL: url(ca) })).not.toContain('hunter2');
    await writeFile(ca, 'a CA certificate');
    expect(databaseUrlFromEnv({ DATABASE_URL: url(ca) })).toBe(url(ca));
  });

  it('refuses both variables at once rather than guessing', () => {
    expect(failureOf({ DATABASE_URL: GOOD, DATABASE_URL_FILE: '/run/secrets/database-url' })).toBe(
      'DATABASE_URL and DATABASE_URL_FILE are both set; set only one',
    );
  });
});

describe('checkDatabaseUrl', () => {
  it('accepts postgres:// and a socket directory in ?host=', () => {
    expect(checkDatabaseUrl('postgres://u@db/x', 'V')).toBe('postgres://u@db/x');
    expect(checkDatabaseUrl('postgresql:///x?host=/run/postgresql', 'V')).toBe('postgresql:///x?host=/run/postgresql');
  });
});

describe('redactDatabaseUrl', () => {
  it('hides the password, in a URL and in something that only looks like one', () => {
    expect(redactDatabaseUrl(GOOD)).toBe('postgresql://softy:***@db:5432/softy_pinko?sslmode=require');
    expect(redactDatabaseUrl('postgresql://softy@db/x')).toBe('postgresql://softy@db/x');
    expect(redactDatabaseUrl('pg://softy:se cret@db:xx/x')).toBe('pg://softy:***@db:xx/x');
  });
});
