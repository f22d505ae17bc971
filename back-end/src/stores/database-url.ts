import { readFileSync } from 'node:fs';

/** The sslmode values pg's connection string understands; anything else is a typo worth stopping for. */
const SSL_MODES = new Set(['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']);

/** The URL with its password replaced, safe for a log line or an error message. */
export function redactDatabaseUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = '***';
    // pg also takes the password as a query parameter.
    if (url.searchParams.has('password')) url.searchParams.set('password', '***');
    return url.toString().replace('password=%2A%2A%2A', 'password=***');
  } catch {
    // Not a URL at all: hide whatever sits between "user:" and "@", the usual place of a password.
    return raw.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
  }
}

/**
 * Checks a PostgreSQL connection URL and answers it unchanged; throws one line that names `variable` and
 * never shows the password. pg parses the URL itself (sslmode and all): this only catches what it would
 * turn into a confusing failure later, or silently into a connection to localhost.
 */
export function checkDatabaseUrl(raw: string, variable: string): string {
  const fail = (problem: string): never => {
    throw new Error(`${variable} ${problem}, like postgresql://user:password@db:5432/softy_pinko`);
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail(`is not a URL (value not shown: it may hold a password); expected a postgresql:// URL`);
  }
  if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') {
    // Only the scheme: in another scheme's URL the password need not sit where redaction looks for it.
    fail(`must start with postgresql:// or postgres://, got a ${url.protocol} URL`);
  }
  const shown = redactDatabaseUrl(raw);
  // A socket directory in ?host= stands in for the host name.
  if (!url.hostname && !url.searchParams.get('host')) fail(`names no host, got "${shown}"`);
  if (url.pathname.length <= 1) fail(`names no database, got "${shown}"`);
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode !== null && !SSL_MODES.has(sslmode)) {
    fail(`has sslmode=${sslmode}; use one of ${[...SSL_MODES].join(', ')}, got "${shown}"`);
  }
  return raw;
}

/**
 * The PostgreSQL URL from `DATABASE_URL`, or from the file `DATABASE_URL_FILE` names (a Docker or Kubernetes
 * secret), checked; undefined when neither is set, which selects the JSON-lines file store.
 */
export function databaseUrlFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const direct = env.DATABASE_URL;
  const file = env.DATABASE_URL_FILE;
  // An empty value counts as unset, so `DATABASE_URL=` in a Compose file keeps the file store.
  if (direct && file) throw new Error('DATABASE_URL and DATABASE_URL_FILE are both set; set only one');
  if (direct) return checkDatabaseUrl(direct.trim(), 'DATABASE_URL');
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`DATABASE_URL_FILE names ${file}, which cannot be read: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // Secret files usually end in a newline; a second line would be a mistake.
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  if (lines.length !== 1) throw new Error(`DATABASE_URL_FILE (${file}) must hold exactly one line, the URL`);
  return checkDatabaseUrl((lines[0] ?? '').trim(), `DATABASE_URL_FILE (${file})`);
}
