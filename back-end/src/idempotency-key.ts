/**
 * The Idempotency-Key request header (IETF draft-ietf-httpapi-idempotency-key-header): one key per
 * submission, chosen by the client (the page sends a random UUID), so a retried POST is stored once.
 */

/** Letters, digits and - _ . : ~ — a UUID fits, and nothing that needs escaping in a log line or a URL. */
const KEY_SHAPE = /^[A-Za-z0-9._:~-]{1,255}$/;

export const IDEMPOTENCY_KEY_RULE = 'Idempotency-Key must be 1 to 255 letters, digits or - _ . : ~ (a UUID is best).';

export type IdempotencyKeyResult = { ok: true; key: string | undefined } | { ok: false; message: string };

/** The key of a request (undefined without the header), or why the header is not one. */
export function parseIdempotencyKey(header: string | string[] | undefined): IdempotencyKeyResult {
  if (header === undefined) return { ok: true, key: undefined };
  if (Array.isArray(header)) return { ok: false, message: 'Send one Idempotency-Key header, not several.' };
  // The draft writes the key as a structured-field string, in quotes; clients commonly send it bare.
  const key = /^"[^"]*"$/.test(header) ? header.slice(1, -1) : header;
  return KEY_SHAPE.test(key) ? { ok: true, key } : { ok: false, message: IDEMPOTENCY_KEY_RULE };
}
