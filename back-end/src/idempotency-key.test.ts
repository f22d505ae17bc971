import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY_RULE, parseIdempotencyKey } from './idempotency-key.js';

describe('parseIdempotencyKey', () => {
  it('takes no header as no key', () => {
    expect(parseIdempotencyKey(undefined)).toEqual({ ok: true, key: undefined });
  });

  it.each([
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['order:2026-11-29.1~a_b', 'order:2026-11-29.1~a_b'],
    ['k'.repeat(255), 'k'.repeat(255)],
  ])('takes %j as the key %j', (header, key) => {
    expect(parseIdempotencyKey(header)).toEqual({ ok: true, key });
  });

  it.each(['', '""', 'has space', 'k'.repeat(256), 'quote"inside', 'ünïcode', 'a,b', '"unclosed', 'semi;colon'])(
    'refuses %j',
    (header) => {
      expect(parseIdempotencyKey(header)).toEqual({ ok: false, message: IDEMPOTENCY_KEY_RULE });
    },
  );

  it('refuses several headers', () => {
    expect(parseIdempotencyKey(['a', 'b'])).toMatchObject({ ok: false });
  });
});
