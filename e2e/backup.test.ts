/**
 * Backups that restore, for both stores, through `npm run backup` / `npm run restore` against a real stack:
 * taken under POST load, the volume destroyed, restored, and every message acknowledged before the backup
 * started found again with its id and its idempotency key; a key sent again after the restore counts once.
 * Prints the backup's size and time, and the restore's, for 100,000 messages.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLoad } from './load.js';
import { REPO_ROOT, databaseSecretsEnv, freePort } from '../scripts/lib/stack.js';
import { TestStack } from './test-stack.js';

const execFileAsync = promisify(execFile);
const skipReason = inject('stackSkipReason');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MANY = 100_000;

interface Case {
  store: 'file' | 'postgres';
  files: string[];
  /** Every stored message's id under each key, read from inside the stack. */
  stored: (stack: TestStack) => Promise<Map<string, string[]>>;
  /** Fills the store with `MANY` messages quickly (not through the API: the figure is about the backup). */
  fill: (stack: TestStack, dir: string) => Promise<void>;
}

async function exec(stack: TestStack, args: string[], input?: string): Promise<string> {
  // Not stack.exec(): this one feeds stdin and takes large outputs.
  const [command, full] = stack.composeArgs(args);
  const child = execFileAsync(command, full, {
    env: { ...process.env, ...stack.env },
    maxBuffer: 256 * 1024 * 1024,
    timeout: 300_000,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}

const psql = (stack: TestStack, query: string, input?: string) =>
  exec(
    stack,
    ['exec', '-T', 'db', 'psql', '-U', 'softy', '-d', 'softy_pinko', '-v', 'ON_ERROR_STOP=1', '-Atc', query],
    input,
  );

const cases: Case[] = [
  {
    store: 'file',
    files: [],
    async stored(stack) {
      const text = await exec(stack, ['run', '--rm', '--no-deps', '-T', 'back-end', 'node', 'dist/cli/messages.js']);
      const found = new Map<string, string[]>();
      for (const line of text.split('\n').filter(Boolean)) {
        const { id, idempotencyKey } = JSON.parse(line) as { id: string; idempotencyKey?: string };
        if (idempotencyKey) found.set(idempotencyKey, [...(found.get(idempotencyKey) ?? []), id]);
      }
      return found;
    },
    async fill(stack, dir) {
      const at = Date.now();
      const lines = Array.from({ length: MANY }, (_, i) =>
        JSON.stringify({
          id: randomUUID(),
          receivedAt: new Date(at + i).toISOString(),
          name: `Bulk ${i}`,
          email: 'bulk@example.com',
          message: 'A message of a typical length, a sentence or two about what the sender would like to know.',
          idempotencyKey: randomUUID(),
        }),
      );
      const file = join(dir, 'many.jsonl');
      await writeFile(file, `${lines.join('\n')}\n`);
      await backupScript(stack, ['restore', file]);
    },
  },
  {
    store: 'postgres',
    files: [`${REPO_ROOT}docker-compose.postgres.yml`],
    async stored(stack) {
      const rows = await psql(
        stack,
        `SELECT idempotency_key || ' ' || id FROM contact_messages WHERE idempotency_key IS NOT NULL`,
      );
      const found = new Map<string, string[]>();
      for (const row of rows.split('\n').filter(Boolean)) {
        const [key, id] = row.split(' ') as [string, string];
        found.set(key, [...(found.get(key) ?? []), id]);
      }
      return found;
    },
    async fill(stack) {
      await psql(
        stack,
        `INSERT INTO contact_messages (id, idempotency_key, received_at, name, email, message)
         SELECT gen_random_uuid(), gen_random_uuid()::text, now() + i * interval '1 ms', 'Bulk ' || i,
           'bulk@example.com', 'A message of a typical length, a sentence or two about what the sender would like to know.'
         FROM generate_series(1, ${MANY}) AS i`,
      );
    },
  },
];

/** `npm run backup` / `npm run restore` against the stack; answers stderr (its report lines). */
async function backupScript(stack: TestStack, args: string[]): Promise<string> {
  const files = stack.files.flatMap((f) => ['-f', f]);
  const { stderr } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', `${REPO_ROOT}scripts/backup.ts`, ...args, '-p', stack.project, ...files],
    { cwd: REPO_ROOT, env: { ...process.env, ...stack.env, INIT_CWD: REPO_ROOT }, timeout: 600_000 },
  );
  return stderr;
}

for (const { store, files, stored, fill } of cases) {
  describe.skipIf(skipReason !== '').sequential(`backup and restore of the ${store} store`, () => {
    let stack: TestStack;
    let dir: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `softy-pinko-backup-${store}-`));
      const env = { API_RATE_LIMIT: '100000r/s', API_RATE_BURST: '100000', ...(await databaseSecretsEnv()) };
      stack = new TestStack(`softy-pinko-backup-${store}`, await freePort(), env, { files });
      await stack.down();
      await stack.up();
    });
    afterAll(async () => {
      if (stack) await stack.down();
    });

    it('finds every message acknowledged before a backup under load after the volume is lost and restored', async () => {
      const requests = new Map<number, string>();
      const acknowledged = new Map<string, { id: string; at: number }>();
      const load = startLoad(`${stack.baseUrl}/api/contact`, {
        ratePerSecond: 50,
        maxDurationMs: 120_000,
        init: (index) => {
          const key = randomUUID();
          requests.set(index, key);
          return {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body: JSON.stringify({ name: `Backup ${index}`, email: 'backup@example.com', message: 'Kept safe.' }),
          };
        },
        onResponse: (index, response, body) => {
          if (response.status === 201)
            acknowledged.set(requests.get(index)!, { id: (JSON.parse(body) as { id: string }).id, at: Date.now() });
        },
      });
      await sleep(3_000);
      const backupStarted = Date.now();
      const report = await backupScript(stack, ['backup', '--out', dir]);
      await sleep(2_000);
      const result = await load.stop();
      console.log(
        `[backup ${store}] under load: ${report.trim()}; ${result.sent} POSTs, ${JSON.stringify(result.statuses)}`,
      );
      expect(result.failures).toBe(0);
      const before = [...acknowledged].filter(([, { at }]) => at < backupStarted);
      expect(before.length).toBeGreaterThan(100);
      const [backup] = await readdir(dir);
      expect(backup).toMatch(store === 'postgres' ? /^softy-pinko-postgres-\d{8}T\d{6}Z\.dump$/ : /\.jsonl$/);

      // The volume is lost: the stack and its volumes go, a fresh one comes up empty.
      await stack.down();
      await stack.up();
      expect((await stored(stack)).size).toBe(0);
      console.log(`[backup ${store}] ${(await backupScript(stack, ['restore', join(dir, backup!)])).trim()}`);
      await stack.waitHealthy();

      const found = await stored(stack);
      for (const [key, { id }] of before) expect(found.get(key), `key ${key}`).toEqual([id]);
      // A key acknowledged before the backup, sent again: the same 201 body's id, and still one message.
      const [key, { id }] = before[0]!;
      const again = await fetch(`${stack.baseUrl}/api/contact`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ name: 'Again', email: 'backup@example.com', message: 'Sent twice.' }),
      });
      expect(again.status).toBe(201);
      expect(((await again.json()) as { id: string }).id).toBe(id);
      expect((await stored(stack)).get(key)).toEqual([id]);
    }, 900_000);

    it(`prints the backup's size and time, and the restore's, for ${MANY.toLocaleString('en')} messages`, async () => {
      const many = await mkdtemp(join(tmpdir(), `softy-pinko-backup-many-${store}-`));
      await fill(stack, many);
      const out = join(many, 'out');
      const started = performance.now();
      await backupScript(stack, ['backup', '--out', out]);
      const backupMs = performance.now() - started;
      const [backup] = await readdir(out);
      const { size } = await stat(join(out, backup!));
      await stack.down();
      await stack.up();
      const restoreStarted = performance.now();
      await backupScript(stack, ['restore', join(out, backup!)]);
      const restoreMs = performance.now() - restoreStarted;
      const count = (await stored(stack)).size;
      console.log(
        `[backup ${store}] ${count.toLocaleString('en')} messages: backup ${(size / 1024 / 1024).toFixed(1)} MiB ` +
          `in ${(backupMs / 1000).toFixed(1)} s, restore into an empty volume in ${(restoreMs / 1000).toFixed(1)} s`,
      );
      expect(count).toBeGreaterThanOrEqual(MANY);
    }, 900_000);
  });
}
