import { accessSync, constants, readFileSync } from 'node:fs';

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
  // pg reads these files when it connects; a wrong path would then look like a database that is down.
  for (const parameter of ['sslrootcert', 'sslcert', 'sslkey']) {
    const path = url.searchParams.get(parameter);
    if (path === null) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      fail(`has ${parameter}=${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return raw;
}

// Node's codes for a server certificate that no trusted CA signed (OpenSSL's verify errors).
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);

/**
 * What to fix when connecting failed for a reason a setting explains (TLS, a password the database does not
 * know), in one line naming it; undefined for any other error. Used at start-up, where such a failure is a
 * configuration mistake, not a server that is down.
 */
export function connectionProblem(error: unknown, url: string): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === '28P01') {
    return (
      `the database refused the password in the database URL (28P01 ${error.message}). PostgreSQL's data ` +
      `volume keeps the password it was first created with: new secrets never reach an existing volume. Put ` +
      `that password back in the secret, or change it in the database ("Rotate the database password" in docs/stores.md)`
    );
  }
  const params = new URL(url).searchParams;
  const ca = params.get('sslrootcert');
  const setting = 'the database URL (DATABASE_URL or DATABASE_URL_FILE)';
  if (UNTRUSTED.has(code)) {
    return ca
      ? `TLS: the server's certificate is not signed by the CA in sslrootcert=${ca} (${code}); ` +
          `put the CA that signed it there, in ${setting}`
      : `TLS: the server's certificate is not signed by a CA this machine trusts (${code}); ` +
          `mount your provider's CA file and add sslrootcert=/path/to/ca.pem to ${setting}`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return (
      `TLS: the server's certificate is not for host ${new URL(url).hostname} (${code}); ` +
      `use the host name its certificate names in ${setting}`
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return `TLS: the server's certificate is outside its validity dates (${code}); the database's certificate needs renewing`;
  }
  if (/server does not support SSL/i.test(error.message)) {
    return `TLS: the server does not accept TLS connections; remove sslmode from ${setting} or enable ssl on the server`;
  }
  return undefined;
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
