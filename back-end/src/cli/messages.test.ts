import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFileStore } from '../stores/file.js';
import { openPostgresStore } from '../stores/postgres.js';
import type { ContactMessage } from '../stores/types.js';
import { postgresSkipReason, usePostgres } from '../testing/postgres.js';
import { useTempDir } from '../testing/temp-dir.js';
import { main } from './messages.js';
import { aMessage } from '../testing/messages.js';

const tempDir = useTempDir('messages-cli');
const server = usePostgres();

async function run(args: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { env, out: (line) => out.push(line), err: (line) => err.push(line) });
  return { code, out, err };
}

const jsonl = (messages: ContactMessage[]) => messages.map((message) => `${JSON.stringify(message)}\n`).join('');

describe('messages list', () => {
  it('prints every message of the file store as a JSON line', async () => {
    const path = join(tempDir(), 'messages.jsonl');
    const store = createFileStore(path);
    const stored = [aMessage(), aMessage({ idempotencyKey: randomUUID() })];
    for (const message of stored) await store.append(message);
    await store.close();
    const { code, out, err } = await run([], { CONTACT_STORE_PATH: path });
    expect(code).toBe(0);
    expect(out.map((line) => JSON.parse(line) as unknown)).toEqual(stored);
    expect(err).toEqual(['2 message(s) in the file store']);
  });

  it.skipIf(postgresSkipReason !== '')('prints every message of the PostgreSQL store', async () => {
    const url = await server().createDatabase('cli_list');
    const store = await openPostgresStore(url);
    const stored = [aMessage({ receivedAt: '2026-01-01T00:00:00.000Z' }), aMessage()];
    for (const message of stored) await store.append(message);
    await store.close();
    const { code, out, err } = await run(['list'], { DATABASE_URL: url });
    expect(code).toBe(0);
    expect(out.map((line) => JSON.parse(line) as unknown)).toEqual(stored);
    expect(err).toEqual(['2 message(s) in the postgres store']);
  });

  it('stops on a bad DATABASE_URL with one line, without the password', async () => {
    const { code, err } = await run(['list'], { DATABASE_URL: 'postgresql://softy:hunter2@db' });
    expect(code).toBe(1);
    expect(err).toEqual([expect.stringMatching(/^messages list: DATABASE_URL names no database/)]);
    expect(err.join('')).not.toContain('hunter2');
  });

  it('answers a wrong command with the usage', async () => {
    expect(await run(['lsit'], {})).toMatchObject({
      code: 2,
      err: ['usage: messages [list] | messages import FILE.jsonl'],
    });
    expect((await run(['import'], {})).code).toBe(2);
  });
});

describe('messages import', () => {
  it('needs a PostgreSQL database to import into', async () => {
    const { code, err } = await run(['import', join(tempDir(), 'x.jsonl')], {});
    expect(code).toBe(2);
    expect(err[0]).toMatch(/set DATABASE_URL or DATABASE_URL_FILE/);
  });

  it.skipIf(postgresSkipReason !== '')(
    'copies a JSON-lines file into PostgreSQL keeping ids, times and keys, and never twice',
    async () => {
      const url = await server().createDatabase('cli_import');
      const key = randomUUID();
      const messages = [
        aMessage({ receivedAt: '2026-01-01T10:00:00.000Z' }),
        aMessage({ receivedAt: '2026-01-01T11:00:00.000Z', idempotencyKey: key }),
        aMessage({ receivedAt: '2026-01-01T12:00:00.000Z', message: 'line one\nline two' }),
      ];
      const file = join(tempDir(), 'contact-messages.jsonl');
      // A later line with a key already seen is a repeat the file store never answered as new.
      await writeFile(file, jsonl([...messages, aMessage({ idempotencyKey: key })]));

      expect(await run(['import', file], { DATABASE_URL: url })).toMatchObject({
        code: 0,
        err: ['imported 3 message(s) into PostgreSQL; 0 were there already'],
      });
      // Messages that arrived in the file meanwhile: a second run brings those, and only those.
      const later = aMessage({ receivedAt: '2026-01-02T09:00:00.000Z' });
      await writeFile(file, jsonl([...messages, later]));
      expect((await run(['import', file], { DATABASE_URL: url })).err).toEqual([
        'imported 1 message(s) into PostgreSQL; 3 were there already',
      ]);

      const { out } = await run(['list'], { DATABASE_URL: url });
      expect(out.map((line) => JSON.parse(line) as unknown)).toEqual([...messages, later]);
    },
  );

  it.skipIf(postgresSkipReason !== '')(
    'imports the whole lines of a file cut off mid-line, warning about the torn one',
    async () => {
      const file = join(tempDir(), 'torn.jsonl');
      const whole = [
        aMessage({ receivedAt: '2026-01-01T10:00:00.000Z' }),
        aMessage({ receivedAt: '2026-01-01T11:00:00.000Z', idempotencyKey: randomUUID() }),
      ];
      await writeFile(file, `${jsonl(whole)}{"id":"${randomUUID()}","receivedAt":"20`);
      const url = await server().createDatabase('cli_torn');
      const { code, err } = await run(['import', file], { DATABASE_URL: url });
      expect(code).toBe(0);
      expect(err).toEqual([
        expect.stringMatching(/torn\.jsonl:3: skipped a torn last line/),
        'imported 2 message(s) into PostgreSQL; 0 were there already',
      ]);
      expect((await run(['list'], { DATABASE_URL: url })).out.map((line) => JSON.parse(line) as unknown)).toEqual(
        whole,
      );
    },
  );
});

describe('messages list, file store cut off mid-line', () => {
  it('lists the whole lines and warns about the torn one', async () => {
    const path = join(tempDir(), 'torn.jsonl');
    const whole = [aMessage(), aMessage()];
    await writeFile(path, `${jsonl(whole)}{"id":"cut`);
    const { code, out, err } = await run(['list'], { CONTACT_STORE_PATH: path });
    expect(code).toBe(0);
    expect(out.map((line) => JSON.parse(line) as unknown)).toEqual(whole);
    expect(err).toEqual([
      expect.stringMatching(/torn\.jsonl:3: skipped a torn last line/),
      '2 message(s) in the file store',
    ]);
  });
});
