/**
 * The one contract every ContactStore keeps, run against the JSON-lines file and against a real PostgreSQL
 * server. Several store instances over the same file or database stand for several replicas.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { postgresSkipReason, usePostgres } from '../testing/postgres.js';
import { useTempDir } from '../testing/temp-dir.js';
import { createFileStore } from './file.js';
import { openPostgresStore } from './postgres.js';
import type { ContactMessage, ContactStore } from './types.js';
import { aMessage } from '../testing/messages.js';

const tempDir = useTempDir('store-contract');
const server = usePostgres();

interface Backend {
  name: string;
  skip: boolean;
  /** A fresh, empty place to store into (a file path or a database URL), for one test. */
  freshPlace(): Promise<string>;
  open(place: string): Promise<ContactStore>;
}

const backends: Backend[] = [
  {
    name: 'file',
    skip: false,
    freshPlace: async () => join(tempDir(), 'messages.jsonl'),
    open: async (path) => createFileStore(path),
  },
  {
    name: 'postgres',
    skip: postgresSkipReason !== '',
    freshPlace: () => server().createDatabase('contract'),
    open: (url) => openPostgresStore(url),
  },
];

const ids = (messages: ContactMessage[]) => messages.map((message) => message.id).sort();

describe.each(backends)('the $name store', ({ skip, freshPlace, open }) => {
  const opened: ContactStore[] = [];
  const openStore = async (place: string) => {
    const store = await open(place);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  it.skipIf(skip)('stores a message with every field and lists it back', async () => {
    const store = await openStore(await freshPlace());
    const message = aMessage({ message: 'line one\nline two, "quoted", ünïcödé ✓' });
    expect(await store.append(message)).toEqual({ message, created: true });
    expect(await store.list()).toEqual([message]);
  });

  it.skipIf(skip)('answers a repeated idempotency key with the message stored first, storing nothing', async () => {
    const store = await openStore(await freshPlace());
    const key = randomUUID();
    const first = aMessage({ idempotencyKey: key });
    await store.append(first);
    const repeat = aMessage({ idempotencyKey: key, message: 'the retry' });
    expect(await store.append(repeat)).toEqual({ message: first, created: false });
    expect(await store.list()).toEqual([first]);
  });

  it.skipIf(skip)('stores messages without a key each time, even with the same text', async () => {
    const store = await openStore(await freshPlace());
    const [a, b] = [aMessage(), aMessage()];
    await store.append(a);
    await store.append(b);
    expect(ids(await store.list())).toEqual(ids([a, b]));
  });

  it.skipIf(skip)('loses and duplicates nothing when 5 instances append 40 messages each at once', async () => {
    const place = await freshPlace();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openStore(place)));
    const sent = stores.flatMap((store, s) =>
      Array.from({ length: 40 }, (_, i) => ({ store, message: aMessage({ message: `store ${s}, message ${i}` }) })),
    );
    const results = await Promise.all(sent.map(({ store, message }) => store.append(message)));
    expect(results.every((result) => result.created)).toBe(true);
    const stored = await stores[0]!.list();
    expect(stored).toHaveLength(200);
    expect(ids(stored)).toEqual(ids(sent.map(({ message }) => message)));
  });

  it.skipIf(skip)('stores a key once when 5 instances receive it 4 times each at once', async () => {
    const place = await freshPlace();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openStore(place)));
    // Every instance has stored something before, so each has its file open or its pool warm.
    await Promise.all(stores.map((store) => store.append(aMessage())));
    const key = randomUUID();
    const attempts = stores.flatMap((store) =>
      Array.from({ length: 4 }, () => store.append(aMessage({ idempotencyKey: key }))),
    );
    const results = await Promise.all(attempts);
    const answered = new Set(results.map((result) => result.message.id));
    expect(answered.size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    const stored = (await stores[0]!.list()).filter((message) => message.idempotencyKey === key);
    expect(stored.map((message) => message.id)).toEqual([...answered]);
  });

  it.skipIf(skip)('remembers idempotency keys across a restart', async () => {
    const place = await freshPlace();
    const before = await openStore(place);
    const key = randomUUID();
    const first = aMessage({ idempotencyKey: key });
    await before.append(first);
    await before.close();
    const after = await openStore(place);
    expect(await after.append(aMessage({ idempotencyKey: key }))).toEqual({
      message: first,
      created: false,
    });
    expect(await after.list()).toEqual([first]);
  });

  it.skipIf(skip)('learns a key another instance stored after it opened', async () => {
    const place = await freshPlace();
    const [one, two] = [await openStore(place), await openStore(place)];
    await two.append(aMessage());
    const key = randomUUID();
    const first = aMessage({ idempotencyKey: key });
    await one.append(first);
    expect((await two.append(aMessage({ idempotencyKey: key }))).message).toEqual(first);
    expect(await two.list()).toHaveLength(2);
  });

  it.skipIf(skip)('is ready when it can take a message', async () => {
    const store = await openStore(await freshPlace());
    await expect(store.ready()).resolves.toBeUndefined();
  });
});
