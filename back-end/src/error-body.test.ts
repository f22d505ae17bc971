import { readdirSync, readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { Value } from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { ErrorBody, errorBody } from './error-body.js';

const repo = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, repo), 'utf8');

/** A body exactly as the back-end writes it: valid against ErrorBody, and errorBody's own JSON, key for key. */
function expectErrorBody(text: string, statusCode: number): void {
  const body: unknown = JSON.parse(text);
  expect(Value.Check(ErrorBody, body)).toBe(true);
  expect(text).toBe(`${JSON.stringify(errorBody(statusCode, (body as ErrorBody).message))}\n`);
}

describe('errorBody', () => {
  it('names the status by its reason phrase and passes the shared schema', () => {
    const body = errorBody(400, 'Some fields need attention: name.', { name: 'Please enter your name.' });
    expect(body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'Some fields need attention: name.',
      fields: { name: 'Please enter your name.' },
    });
    expect(Value.Check(ErrorBody, body)).toBe(true);
  });
});

// The proxies answer some errors themselves, in files nginx and HAProxy read as they are: held to the same shape.
describe("the proxies' own JSON error answers", () => {
  const confs = readdirSync(new URL('proxy/', repo), { recursive: true, encoding: 'utf8' }).filter((f) =>
    f.endsWith('.conf'),
  );
  // nginx's `return 503 '{...}\n';`, where \n is nginx's escape for a newline in a quoted string.
  const returns = confs.flatMap((file) =>
    [...read(`proxy/${file}`).matchAll(/^\s*return (\d{3}) '(\{.*\}(?:\\n)?)';$/gm)].map(([, code, body]) => ({
      file,
      code: Number(code),
      body: body!.replaceAll('\\n', '\n'),
    })),
  );

  it('finds the 429, 413 and 503 nginx writes', () => {
    expect(returns.map(({ code }) => code)).toEqual([429, 413, 503]);
  });

  it.each(returns)('nginx $code in $file is the back-end ErrorBody', ({ code, body }) => {
    expectErrorBody(body, code);
  });

  const errorfiles = readdirSync(new URL('deploy/swarm/haproxy-errors/', repo));
  it.each(errorfiles)('HAProxy %s: its status line, Content-Length and ErrorBody agree', (file) => {
    const [head = '', body = ''] = read(`deploy/swarm/haproxy-errors/${file}`).split('\r\n\r\n');
    const [statusLine, ...headers] = head.split('\r\n');
    const [, code, reason] = /^HTTP\/1\.1 (\d{3}) (.+)$/.exec(statusLine ?? '') ?? [];
    expect(reason).toBe(STATUS_CODES[Number(code)]);
    expect(headers).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expectErrorBody(body, Number(code));
  });
});
