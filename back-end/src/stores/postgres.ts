import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { connectionProblem, redactDatabaseUrl } from './database-url.js';
import { checkSchema, migrate, SchemaTooOldError } from './migrate.js';
import { StoreUnavailableError, type AppendResult, type ContactMessage, type ContactStore } from './types.js';

export interface PostgresStoreOptions {
  /** Connections per replica; N replicas × this must stay under the server's max_connections (100). */
  poolSize?: number;
  /** The longest an append or a readiness check may take before it fails as unavailable. */
  deadlineMs?: number;
  /** Where warnings go (a lost connection, a server not reachable yet); stderr when absent. */
  warn?: (message: string) => void;
  /** Another folder of migrations (tests). */
  migrationsDir?: string;
  /**
   * 'migrate' applies pending migrations when the store opens (tests, tools); 'check' (the server) only
   * checks that the migrate command has applied them, and refuses an older schema.
   */
  schema?: 'migrate' | 'check';
}

// SQLSTATE classes that mean "not now" rather than "wrong": connection exceptions, insufficient resources,
// operator intervention (shutdown, starting up), system errors, and transaction rollbacks (serialization).
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);
// A read-only transaction: the server is a standby after a failover.
const READ_ONLY = '25006';

/** True when an error says the server cannot be reached or used right now, not that the request is wrong. */
export function isTransient(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  // Without a SQLSTATE the error came from the network or the driver (refused, reset, timed out, DNS).
  if (!(error instanceof pg.DatabaseError) || !error.code) return true;
  return TRANSIENT_CLASSES.has(error.code.slice(0, 2)) || error.code === READ_ONLY;
}

// Nothing was sent: the name does not resolve yet (a machine's overlay DNS catching up after it rejoins), the
// port refuses, or the server is still starting (SQLSTATE 57P03).
const NOT_REACHABLE_YET = new Set(['EAI_AGAIN', 'ENOTFOUND', 'ECONNREFUSED', '57P03']);
const RETRY_PAUSE_MS = 100;

/** A network error's or a server error's code (ECONNREFUSED, 57P03), when it has one. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = codeOf(error);
  return code ? `${error.message} (${code})` : error.message;
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`PostgreSQL did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

interface Row {
  id: string;
  idempotency_key: string | null;
  received_at: Date;
  name: string;
  email: string;
  message: string;
}

const COLUMNS = 'id, idempotency_key, received_at, name, email, message';

function toMessage(row: Row): ContactMessage {
  const message: ContactMessage = {
    id: row.id,
    receivedAt: row.received_at.toISOString(),
    name: row.name,
    email: row.email,
    message: row.message,
  };
  if (row.idempotency_key !== null) message.idempotencyKey = row.idempotency_key;
  return message;
}

// No conflict target: a repeated key and a repeated id (an import run twice) both insert nothing.
const INSERT = `INSERT INTO contact_messages (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`;

/** A small pool whose every wait and statement ends within the store's deadline. */
function newPool(url: string, poolSize: number, warn: (message: string) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolSize,
    // Waiting for a pooled connection counts too: an unreachable server costs a visitor ~1 s, not a hang.
    connectionTimeoutMillis: 1_000,
    idleTimeoutMillis: 30_000,
    // Under the deadline, so the server cancels a slow statement itself rather than leaving it running.
    statement_timeout: 800,
    query_timeout: 900,
    keepAlive: true,
    application_name: 'softy-pinko-back-end',
  });
  // An idle connection whose server went away is reported here; the pool drops it and opens a new one later.
  pool.on('error', (error) => warn(`PostgreSQL connection lost (${reasonOf(error)}); reconnecting on demand`));

  return pool;
}

/**
 * The first migration, at start-up: a server that is away only delays it; a certificate refused, a password
 * the volume does not know or a schema too old is a setting or a step to fix: stop and say which.
 */
async function migrateAtStart(
  ensureMigrated: () => Promise<unknown>,
  pool: pg.Pool,
  url: string,
  warn: (message: string) => void,
): Promise<void> {
  const where = redactDatabaseUrl(url);
  try {
    await ensureMigrated();
  } catch (error) {
    const problem = connectionProblem(error, url);
    const tooOld = error instanceof StoreUnavailableError && error.cause instanceof SchemaTooOldError;
    if (problem || tooOld || !isTransient(error)) {
      await pool.end();
      throw new Error(`PostgreSQL at ${where} cannot be used: ${problem ?? reasonOf(error)}`, { cause: error });
    }
    warn(`PostgreSQL at ${where} is not reachable yet (${reasonOf(error)}); POST /api/contact answers 503 until it is`);
  }
}

/** One autocommitted INSERT; a repeat (of a key, or of an id) inserts nothing and reads back the first. */
async function insertOrFind(pool: pg.Pool, message: ContactMessage): Promise<AppendResult> {
  const key = message.idempotencyKey ?? null;
  const params = [message.id, key, message.receivedAt, message.name, message.email, message.message];
  const inserted = await pool.query<Row>(INSERT, params);
  const row = inserted.rows[0];
  if (row) return { message: toMessage(row), created: true };
  const earlier = await pool.query<Row>(
    key === null
      ? `SELECT ${COLUMNS} FROM contact_messages WHERE id = $1`
      : `SELECT ${COLUMNS} FROM contact_messages WHERE idempotency_key = $1`,
    [key ?? message.id],
  );
  const first = earlier.rows[0];
  if (!first) throw new Error(`message ${message.id} is already stored under another idempotency key`);
  return { message: toMessage(first), created: false };
}

/**
 * Keeps messages in PostgreSQL through a small pg pool. Each append is one autocommitted INSERT, so it has
 * been committed when it returns; a repeat of a key inserts nothing, and a second statement (a new snapshot,
 * which sees the first writer's committed row) reads back the message stored first.
 *
 * The schema is migrated when the store opens. A server that cannot be reached yet does not stop start-up:
 * the API answers 503 until it can, and the migrations run then. A server that refuses us (wrong password,
 * no such database) or a failing migration does stop it, with one line that names the cause.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<ContactStore> {
  const { poolSize = 5, deadlineMs = 1_000, migrationsDir } = options;
  const warn = options.warn ?? ((message: string) => process.stderr.write(`${message}\n`));
  const pool = newPool(url, poolSize, warn);

  const migrateOptions = { connectTimeoutMs: 1_000, ...(migrationsDir ? { dir: migrationsDir } : {}) };
  const prepare = options.schema === 'check' ? checkSchema : migrate;
  let migrated: Promise<unknown> | undefined;
  const ensureMigrated = (): Promise<unknown> =>
    (migrated ??= prepare(url, migrateOptions).catch((error: unknown) => {
      migrated = undefined;
      // Found later (the server was away at start-up): unavailable until someone migrates, not a 500.
      if (error instanceof SchemaTooOldError) throw new StoreUnavailableError(error.message, { cause: error });
      throw error;
    }));

  await migrateAtStart(ensureMigrated, pool, url, warn);

  /**
   * Runs `work` within the deadline; failures that mean "not now" become StoreUnavailableError. A server not
   * reachable yet is tried again until then: a blip shorter than the deadline costs the visitor nothing, and
   * the work is safe to repeat (a repeated INSERT inserts nothing and reads back the first).
   */
  async function guarded<T>(work: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      try {
        return await withDeadline(
          ensureMigrated().then(() => work()),
          deadline - Date.now(),
        );
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw error;
        if (!isTransient(error)) throw error;
        if (!NOT_REACHABLE_YET.has(codeOf(error) ?? '') || Date.now() + RETRY_PAUSE_MS >= deadline) {
          throw new StoreUnavailableError(`PostgreSQL is unavailable: ${reasonOf(error)}`, { cause: error });
        }
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }

  let closing: Promise<void> | undefined;

  return {
    kind: 'postgres',
    append: (message) => guarded(() => insertOrFind(pool, message)),
    async list() {
      await ensureMigrated();
      const { rows } = await pool.query<Row>(`SELECT ${COLUMNS} FROM contact_messages ORDER BY received_at, id`);
      return rows.map(toMessage);
    },
    async ready() {
      await guarded(() => pool.query('SELECT 1'));
    },
    // Closing twice (a test, then its cleanup) waits for the one pool.end(), which refuses a second call.
    close: () => (closing ??= pool.end()),
  };
}
