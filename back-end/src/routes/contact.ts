import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createContactStore, type ContactMessage } from '../contact-store.js';
import type { ErrorBody } from '../plugins/errors.js';

export interface ContactOptions {
  /** The JSON-lines file messages are appended to. */
  storePath: string;
}

const JSON_TYPE = 'application/json';
/** What a browser sends for a plain `<form method="post">`, i.e. the page without JavaScript. */
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Where a no-JS form post lands afterwards: back on the form, with the outcome in the query. */
export const REDIRECT_SENT = '/?contact=sent#contact';
export const REDIRECT_INVALID = '/?contact=invalid#contact';

const FIELD_NAMES = ['name', 'email', 'message'] as const;
type FieldName = (typeof FIELD_NAMES)[number];
export type ContactFields = Pick<ContactMessage, FieldName>;

interface FieldRule {
  label: string;
  maxLength: number;
  missing: string;
  /** Extra check on the trimmed, non-empty value; answers the problem, if any. */
  shapeProblem?: (value: string) => string | undefined;
}

// A non-empty local part, exactly one @, then at least two non-empty dot-separated labels; no spaces anywhere.
const EMAIL_SHAPE = /^[^\s@]+@(?:[^\s@.]+\.)+[^\s@.]+$/;

// Lengths count UTF-16 code units, as the form's `maxlength` does, so the browser and the API agree.
const RULES: Record<FieldName, FieldRule> = {
  name: { label: 'Your name', maxLength: 100, missing: 'Please enter your name.' },
  email: {
    label: 'Your email address',
    maxLength: 254,
    missing: 'Please enter your email address.',
    shapeProblem: (value) =>
      EMAIL_SHAPE.test(value) ? undefined : 'Please enter an email address like name@example.com.',
  },
  message: { label: 'Your message', maxLength: 2000, missing: 'Please enter a message.' },
};

export type ContactValidation = { ok: true; value: ContactFields } | { ok: false; fields: Record<string, string> };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks every field (not just the first bad one) so the form can mark them all at once. */
export function validateContact(body: unknown): ContactValidation {
  const input = isRecord(body) ? body : {};
  const fields: Record<string, string> = {};
  const value: ContactFields = { name: '', email: '', message: '' };

  for (const field of FIELD_NAMES) {
    const rule = RULES[field];
    const raw = input[field];
    if (raw === undefined) {
      fields[field] = rule.missing;
      continue;
    }
    if (typeof raw !== 'string') {
      fields[field] = `${rule.label} must be text.`;
      continue;
    }
    const trimmed = raw.trim();
    const problem =
      trimmed === ''
        ? rule.missing
        : trimmed.length > rule.maxLength
          ? `${rule.label} must be at most ${rule.maxLength} characters.`
          : rule.shapeProblem?.(trimmed);
    if (problem) fields[field] = problem;
    else value[field] = trimmed;
  }
  // Unknown fields are refused rather than dropped: a client sending them has a bug worth seeing.
  for (const key of Object.keys(input)) {
    if (!Object.hasOwn(RULES, key)) fields[key] = 'This field is not accepted.';
  }
  return Object.keys(fields).length === 0 ? { ok: true, value } : { ok: false, fields };
}

/** Repeated keys become an array (and so fail the "must be text" check) instead of silently keeping one. */
function parseForm(body: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  for (const [key, value] of new URLSearchParams(body)) {
    const earlier = fields.get(key);
    fields.set(key, earlier === undefined ? value : [earlier, value].flat());
  }
  // fromEntries defines own properties, so a key like "__proto__" is just an unknown field.
  return Object.fromEntries(fields);
}

function mediaType(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

/** The q-value the Accept header gives `type`, taken from its most specific matching range. */
function acceptQuality(ranges: { range: string; q: number }[], type: string): number {
  const [major] = type.split('/');
  const specificity = (range: string) => (range === type ? 3 : range === `${major}/*` ? 2 : range === '*/*' ? 1 : 0);
  const best = ranges.reduce<{ q: number; specificity: number }>(
    (found, { range, q }) => (specificity(range) > found.specificity ? { q, specificity: specificity(range) } : found),
    { q: 0, specificity: 0 },
  );
  return best.q;
}

/**
 * True when the Accept header ranks HTML above JSON: a browser's own form submit (text/html first,
 * anything else at q=0.8), not a script. A tie or no header means JSON, the API's own language.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((part) => {
    const [range = '', ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = Number(params.find((param) => param.startsWith('q='))?.slice(2) ?? 1);
    return { range, q: Number.isFinite(q) ? q : 0 };
  });
  return acceptQuality(ranges, 'text/html') > acceptQuality(ranges, JSON_TYPE);
}

function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

const contact: FastifyPluginAsync<ContactOptions> = async (app, { storePath }) => {
  const store = createContactStore(storePath);
  app.addHook('onClose', async () => store.close());

  // Registered here, not app-wide: this is the only route a plain HTML form posts to.
  app.addContentTypeParser(FORM_TYPE, { parseAs: 'string' }, (_request, body, done) => {
    done(null, parseForm(String(body)));
  });

  app.post(
    '/contact',
    {
      // Checked before the body is read; Fastify alone would also parse text/plain and accept a missing type.
      onRequest: async (request) => {
        const type = mediaType(request);
        if (type !== JSON_TYPE && type !== FORM_TYPE) {
          throw httpError(415, `Send the message as ${JSON_TYPE} or ${FORM_TYPE}.`);
        }
      },
    },
    async (request, reply) => {
      // A browser posting the form without JavaScript must land on a page, not on raw JSON.
      const fromPlainForm = mediaType(request) === FORM_TYPE && prefersHtml(request.headers.accept);
      const result = validateContact(request.body);
      if (!result.ok) {
        if (fromPlainForm) return reply.redirect(REDIRECT_INVALID, 303);
        const body: ErrorBody & { fields: Record<string, string> } = {
          statusCode: 400,
          error: 'Bad Request',
          message: `Some fields need attention: ${Object.keys(result.fields).join(', ')}.`,
          fields: result.fields,
        };
        return reply.code(400).send(body);
      }

      const stored: ContactMessage = { id: randomUUID(), receivedAt: new Date().toISOString(), ...result.value };
      // A failed write rejects here and leaves through the error handler as a 500: never a 201 for a lost message.
      await store.append(stored);
      if (fromPlainForm) return reply.redirect(REDIRECT_SENT, 303);
      return reply.code(201).send({ id: stored.id, receivedAt: stored.receivedAt });
    },
  );
};

export default contact;
