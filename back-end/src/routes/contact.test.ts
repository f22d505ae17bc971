import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../app.js';
import { readContactMessages } from '../contact-store.js';
import { useTempDir } from '../testing/temp-dir.js';
import { REDIRECT_INVALID, REDIRECT_SENT } from './contact.js';

/** What Chrome and Firefox send with a plain form submit. */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const FORM_TYPE = 'application/x-www-form-urlencoded';
const valid = { name: 'Ada Lovelace', email: 'ada@example.com', message: 'I would like a demo, please.' };

const tempDir = useTempDir('contact-route');
let storePath: string;
let app: FastifyInstance;
beforeEach(async () => {
  storePath = join(tempDir(), 'contact-messages.jsonl');
  app = await buildApp({ contactStorePath: storePath });
});
afterEach(() => app.close());

const postJson = (payload: unknown, target: FastifyInstance = app) =>
  target.inject({
    method: 'POST',
    url: '/api/contact',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });

const postForm = (fields: Record<string, string>, headers: InjectOptions['headers'] = {}) =>
  app.inject({
    method: 'POST',
    url: '/api/contact',
    headers: { 'content-type': FORM_TYPE, ...headers },
    payload: new URLSearchParams(fields).toString(),
  });

describe('POST /api/contact, accepted', () => {
  it('stores the message as one JSON line, then answers 201 with its id and time', async () => {
    const before = Date.now();
    const res = await postJson({
      name: '  Ada Lovelace ',
      email: ' ada@example.com ',
      message: '\nI would like a demo, please.  ',
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const answer = res.json<{ id: string; receivedAt: string }>();
    expect(Object.keys(answer).sort()).toEqual(['id', 'receivedAt']);
    expect(answer.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(answer.receivedAt).toISOString()).toBe(answer.receivedAt);
    expect(Date.parse(answer.receivedAt)).toBeGreaterThanOrEqual(before);

    // Stored trimmed, with exactly these keys.
    expect(await readContactMessages(storePath)).toEqual([{ ...answer, ...valid }]);
  });

  it('accepts a urlencoded post and answers it in JSON when the client did not ask for HTML', async () => {
    for (const accept of [undefined, 'application/json', '*/*']) {
      const res = await postForm(valid, accept ? { accept } : {});
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ id: expect.any(String), receivedAt: expect.any(String) });
    }
    const invalid = await postForm({ ...valid, email: 'nope' }, { accept: 'application/json' });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({ fields: { email: expect.any(String) } });
    expect(await readContactMessages(storePath)).toHaveLength(3);
  });

  it('accepts a charset parameter on the content type', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      payload: JSON.stringify(valid),
    });
    expect(res.statusCode).toBe(201);
  });

  it('keeps 50 concurrent messages whole: 50 well-formed lines, 50 different ids', async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        postJson({ ...valid, message: `Message number ${i}: ${'é'.repeat(i * 30)}` }),
      ),
    );
    expect(answers.map((res) => res.statusCode)).toEqual(Array(50).fill(201));

    const stored = await readContactMessages(storePath);
    expect(stored).toHaveLength(50);
    expect(new Set(stored.map((message) => message.id)).size).toBe(50);
    expect(new Set(stored.map((message) => message.message)).size).toBe(50);
    expect(stored.map((message) => message.id).sort()).toEqual(
      answers.map((res) => res.json<{ id: string }>().id).sort(),
    );
  });

  it('keeps messages across closing the app and building a new one on the same file', async () => {
    const first = await postJson({ ...valid, message: 'Before the restart' });
    await app.close();

    app = await buildApp({ contactStorePath: storePath });
    const second = await postJson({ ...valid, message: 'After the restart' });
    expect([first.statusCode, second.statusCode]).toEqual([201, 201]);
    expect((await readContactMessages(storePath)).map((message) => message.message)).toEqual([
      'Before the restart',
      'After the restart',
    ]);
  });
});

describe('POST /api/contact, refused', () => {
  const tooLong = (length: number) => 'a'.repeat(length + 1);

  it.each<[string, Record<string, unknown>, string]>([
    ['a missing name', { email: valid.email, message: valid.message }, 'name'],
    ['a name of spaces only', { ...valid, name: '   \t ' }, 'name'],
    ['a name over 100 characters', { ...valid, name: tooLong(100) }, 'name'],
    ['a number as name', { ...valid, name: 42 }, 'name'],
    ['an array as name', { ...valid, name: ['Ada'] }, 'name'],
    ['null as name', { ...valid, name: null }, 'name'],
    ['a missing email', { name: valid.name, message: valid.message }, 'email'],
    ['an empty email', { ...valid, email: ' ' }, 'email'],
    ['an email over 254 characters', { ...valid, email: `${'a'.repeat(250)}@example.com` }, 'email'],
    ['an email without @', { ...valid, email: 'ada.example.com' }, 'email'],
    ['an email with two @', { ...valid, email: 'ada@home@example.com' }, 'email'],
    ['an email with no local part', { ...valid, email: '@example.com' }, 'email'],
    ['an email whose domain has no dot', { ...valid, email: 'ada@localhost' }, 'email'],
    ['an email whose domain ends in a dot', { ...valid, email: 'ada@example.' }, 'email'],
    ['an email with a space inside', { ...valid, email: 'ada lovelace@example.com' }, 'email'],
    ['an object as email', { ...valid, email: { address: 'ada@example.com' } }, 'email'],
    ['a missing message', { name: valid.name, email: valid.email }, 'message'],
    ['an empty message', { ...valid, message: '\n\n' }, 'message'],
    ['a message over 2000 characters', { ...valid, message: tooLong(2000) }, 'message'],
    ['a boolean as message', { ...valid, message: true }, 'message'],
    ['an unknown extra field', { ...valid, phone: '0117 496 0000' }, 'phone'],
  ])('answers 400 for %s, naming that field only', async (_case, payload, field) => {
    const res = await postJson(payload);
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json<{ statusCode: number; error: string; message: string; fields: Record<string, string> }>();
    expect(body).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.stringContaining(field) });
    expect(Object.keys(body.fields)).toEqual([field]);
    expect(body.fields[field]).toMatch(/^[A-Z].+\.$/);
    expect(await readContactMessages(storePath)).toEqual([]);
  });

  it('accepts the longest values allowed', async () => {
    const res = await postJson({
      name: 'n'.repeat(100),
      email: `${'a'.repeat(242)}@example.com`,
      message: 'm'.repeat(2000),
    });
    expect(res.statusCode).toBe(201);
  });

  it('lists every invalid field at once, not only the first', async () => {
    const res = await postJson({ name: '', email: 'ada@', message: 7, extra: 'x', another: 1 });
    expect(res.statusCode).toBe(400);
    const { fields } = res.json<{ fields: Record<string, string> }>();
    expect(Object.keys(fields).sort()).toEqual(['another', 'email', 'extra', 'message', 'name']);
    expect(fields).toEqual({
      name: 'Please enter your name.',
      email: 'Please enter an email address like name@example.com.',
      message: 'Your message must be text.',
      extra: 'This field is not accepted.',
      another: 'This field is not accepted.',
    });
  });

  it.each([
    ['an array', []],
    ['a string', 'hello'],
    ['null', null],
  ])('treats %s as a body with every field missing', async (_case, payload) => {
    const res = await postJson(payload);
    expect(res.statusCode).toBe(400);
    expect(Object.keys(res.json<{ fields: object }>().fields)).toEqual(['name', 'email', 'message']);
  });

  it('refuses a repeated form field rather than keeping one of its values', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': FORM_TYPE },
      payload: 'name=Ada&name=Eve&email=ada%40example.com&message=Hi',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ fields: { name: 'Your name must be text.' } });
  });

  it('answers malformed JSON with the usual 400 JSON error', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "Ada",',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', message: expect.any(String) });
    expect(res.body).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('refuses a body over 16 KB with 413, storing nothing', async () => {
    const res = await postJson({ ...valid, message: 'x'.repeat(17 * 1024) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large' });
    expect(await readContactMessages(storePath)).toEqual([]);
  });

  it.each([
    ['text/plain', 'name=Ada'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/xml', '<contact/>'],
  ])('refuses %s with 415', async (type, payload) => {
    const res = await app.inject({ method: 'POST', url: '/api/contact', headers: { 'content-type': type }, payload });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toEqual({
      statusCode: 415,
      error: 'Unsupported Media Type',
      message: 'Send the message as application/json or application/x-www-form-urlencoded.',
    });
  });

  it('refuses a post with no content type at all with 415', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/contact' });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ statusCode: 415 });
  });

  it('answers GET with 405 and Allow: POST', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/contact' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.json()).toMatchObject({ statusCode: 405, error: 'Method Not Allowed' });
  });

  it('answers a JSON 503 with Retry-After, never 201 or 500, when the message cannot be written', async () => {
    // A file where the store's directory should be: unwritable even when the tests run as root.
    const blocked = join(tempDir(), 'blocked');
    await writeFile(blocked, 'not a directory');
    const broken = await buildApp({ contactStorePath: join(blocked, 'contact-messages.jsonl') });
    const res = await postJson(valid, broken);
    const ready = await broken.inject({ method: 'GET', url: '/api/health/ready' });
    await broken.close();
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json()).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'Your message could not be stored just now. Please try again in a moment.',
    });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ status: 'unavailable', store: 'file' });
    expect(Object.keys(ready.json())).toEqual(['status', 'store', 'message']);
  });

  it('answers readiness with the store it asked, every property kept by the response schema', async () => {
    const ready = await app.inject({ method: 'GET', url: '/api/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', store: 'file' });
  });
});

describe('POST /api/contact with an Idempotency-Key', () => {
  it('answers a repeated key with the same 201 body and stores the message once', async () => {
    const headers = { 'content-type': 'application/json', 'idempotency-key': '8e03978e-40d5-43e8-bc93-6894a57f9324' };
    const send = (message: string) =>
      app.inject({ method: 'POST', url: '/api/contact', headers, payload: JSON.stringify({ ...valid, message }) });
    const first = await send(valid.message);
    const again = await send('A retry, with other words.');
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.body).toBe(first.body);
    expect(await readContactMessages(storePath)).toEqual([
      { ...first.json<object>(), ...valid, idempotencyKey: '8e03978e-40d5-43e8-bc93-6894a57f9324' },
    ]);
  });

  it.each(['has spaces', '', 'x'.repeat(256)])('refuses the key %j with 400 and stores nothing', async (key) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify(valid),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      statusCode: 400,
      error: 'Bad Request',
      message: expect.stringMatching(/^Idempotency-Key/),
    });
    expect(await readContactMessages(storePath)).toEqual([]);
  });
});

describe('POST /api/contact from a browser without JavaScript', () => {
  it('redirects back to the form with 303 once the message is stored', async () => {
    const res = await postForm(valid, { accept: BROWSER_ACCEPT });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(REDIRECT_SENT);
    expect(REDIRECT_SENT).toBe('/?contact=sent#contact');
    expect(await readContactMessages(storePath)).toMatchObject([valid]);
  });

  it('redirects back to the form with 303 and the invalid flag, storing nothing', async () => {
    const res = await postForm({ ...valid, email: 'not an email' }, { accept: BROWSER_ACCEPT });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe(REDIRECT_INVALID);
    expect(REDIRECT_INVALID).toBe('/?contact=invalid#contact');
    expect(await readContactMessages(storePath)).toEqual([]);
  });

  it('answers JSON to a JSON post even when it asks for HTML', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/contact',
      headers: { 'content-type': 'application/json', accept: BROWSER_ACCEPT },
      payload: JSON.stringify(valid),
    });
    expect(res.statusCode).toBe(201);
  });
});

describe('which form posts get a page back: the ones whose Accept ranks HTML above JSON', () => {
  it.each<[string | undefined, boolean]>([
    [BROWSER_ACCEPT, true],
    ['text/html', true],
    ['text/*', true],
    ['application/json, text/html;q=0.5', false],
    ['text/html;q=0.5, application/json', false],
    ['application/json', false],
    ['*/*', false],
    ['text/html;q=0', false],
    ['TEXT/HTML; Q=1', true],
    ['', false],
    [undefined, false],
  ])('%j → %s', async (accept, expected) => {
    const res = await postForm(valid, accept === undefined ? {} : { accept });
    expect(res.statusCode).toBe(expected ? 303 : 201);
  });
});
