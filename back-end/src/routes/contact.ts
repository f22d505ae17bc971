import { randomUUID } from 'node:crypto';
import accepts from '@fastify/accepts';
import formbody from '@fastify/formbody';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaValidationError } from 'fastify';
import { Type, type Static } from 'typebox';
import { StoreUnavailableError, type ContactMessage, type ContactStore } from '../contact-store.js';
import { ErrorBody, errorBody } from '../error-body.js';
import { parseIdempotencyKey } from '../idempotency-key.js';
import { RETRY_AFTER_SECONDS } from './health.js';

export interface ContactOptions {
  /** Where accepted messages are kept. */
  store: ContactStore;
}

const JSON_TYPE = 'application/json';
/** What a browser sends for a plain `<form method="post">`, i.e. the page without JavaScript. */
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Where a no-JS form post lands afterwards: back on the form, with the outcome in the query. */
export const REDIRECT_SENT = '/?contact=sent#contact';
export const REDIRECT_INVALID = '/?contact=invalid#contact';

// A non-empty local part, exactly one @, then at least two non-empty dot-separated labels; no spaces anywhere.
const EMAIL_SHAPE = '^[^\\s@]+@(?:[^\\s@.]+\\.)+[^\\s@.]+$';

// Lengths count characters (code points); the form's maxlength counts UTF-16 units, so it never lets more through.
const text = (maxLength: number, options: { pattern?: string } = {}) =>
  Type.String({ minLength: 1, maxLength, ...options });

/** What a visitor sends, every field required; the handler's `request.body` has this type (the type provider). */
const ContactFields = Type.Object(
  { name: text(100), email: text(254, { pattern: EMAIL_SHAPE }), message: text(2000) },
  // Unknown fields are refused rather than dropped: a client sending them has a bug worth seeing.
  { additionalProperties: false },
);
export type ContactFields = Static<typeof ContactFields>;
type FieldName = keyof ContactFields;

/** The 201's body. Response schemas list every property sent: fast-json-stringify drops any other. */
const Accepted = Type.Object({ id: Type.String(), receivedAt: Type.String() });

/** How each field is named to a visitor, and what to say when it is left empty. */
const WORDING: Record<FieldName, { label: string; missing: string }> = {
  name: { label: 'Your name', missing: 'Please enter your name.' },
  email: { label: 'Your email address', missing: 'Please enter your email address.' },
  message: { label: 'Your message', missing: 'Please enter a message.' },
};
const FIELD_NAMES = Object.keys(WORDING) as FieldName[];
const isFieldName = (key: string): key is FieldName => Object.hasOwn(WORDING, key);

/** One schema error as the field it concerns and a sentence a visitor understands. */
function problems({ keyword, instancePath, params }: FastifySchemaValidationError): [string, string][] {
  if (keyword === 'additionalProperties') return [[String(params.additionalProperty), 'This field is not accepted.']];
  // The schema constrains our three fields only, so any other error names one of them, or the body itself.
  const field = (keyword === 'required' ? params.missingProperty : instancePath.slice(1)) as FieldName | '';
  // A body that is not an object at all (an array, a string, null) has every field missing.
  if (field === '') return FIELD_NAMES.map((name) => [name, WORDING[name].missing]);
  const { label, missing } = WORDING[field];
  switch (keyword) {
    case 'type':
      return [[field, `${label} must be text.`]];
    case 'maxLength':
      return [[field, `${label} must be at most ${String(params.limit)} characters.`]];
    case 'pattern':
      return [[field, 'Please enter an email address like name@example.com.']];
    default: // required, minLength
      return [[field, missing]];
  }
}

/** The schema's errors as a 400 naming every invalid field at once (ajv's allErrors), so the form can mark them all. */
function invalidFields(errors: FastifySchemaValidationError[]): Error {
  const found = new Map<string, string>();
  for (const error of errors) {
    for (const [field, problem] of problems(error)) {
      // Length before shape: an empty or overlong email address is not also told its shape is wrong.
      if (!found.has(field) || error.keyword !== 'pattern') found.set(field, problem);
    }
  }
  // Our fields in form order, then unknown ones as sent; fromEntries makes "__proto__" an own key like any other.
  const rank = (field: string) => (isFieldName(field) ? FIELD_NAMES.indexOf(field) : FIELD_NAMES.length);
  const fields = Object.fromEntries([...found].sort(([a], [b]) => rank(a) - rank(b)));
  const message = `Some fields need attention: ${Object.keys(fields).join(', ')}.`;
  return Object.assign(new Error(message), { statusCode: 400, fields });
}

function unsupportedType(): Error {
  return Object.assign(new Error(`Send the message as ${JSON_TYPE} or ${FORM_TYPE}.`), { statusCode: 415 });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const contact: FastifyPluginAsyncTypebox<ContactOptions> = async (app, { store }) => {
  // Registered here, not app-wide: this is the only route a form posts to, and the only one that answers with a page.
  await app.register(formbody);
  await app.register(accepts);

  app.post(
    '/contact',
    {
      // A 303 (the no-JS form) has no body; every error leaves through plugins/errors.ts, or the 503 below.
      schema: { body: ContactFields, response: { 201: Accepted, '4xx': ErrorBody, '5xx': ErrorBody } },
      schemaErrorFormatter: invalidFields,
      // The handler decides how to answer an invalid post: JSON to a script, a redirect to a browser.
      attachValidation: true,
      // Checked before the body is read, as Fastify's media type; without it an untyped empty post or text/plain
      // would reach validation and be answered "every field missing".
      onRequest: (request, _reply, done) =>
        done(request.mediaType === JSON_TYPE || request.mediaType === FORM_TYPE ? undefined : unsupportedType()),
      // White space around an answer is not part of it: trimmed before the schema checks emptiness and length.
      preValidation: (request, _reply, done) => {
        const body: unknown = request.body;
        if (isRecord(body)) {
          for (const field of FIELD_NAMES) if (typeof body[field] === 'string') body[field] = body[field].trim();
        }
        done();
      },
    },
    async (request, reply) => {
      // A browser posting the form without JavaScript must land on a page, not on raw JSON. A tie means JSON.
      const fromPlainForm =
        request.mediaType === FORM_TYPE && request.accepts().type([JSON_TYPE, 'text/html']) === 'text/html';
      if (request.validationError) {
        if (fromPlainForm) return reply.redirect(REDIRECT_INVALID, 303);
        throw request.validationError;
      }
      const idempotency = parseIdempotencyKey(request.headers['idempotency-key']);
      if (!idempotency.ok) throw Object.assign(new Error(idempotency.message), { statusCode: 400 });

      const { name, email, message } = request.body;
      const received: ContactMessage = { id: randomUUID(), receivedAt: new Date().toISOString(), name, email, message };
      if (idempotency.key !== undefined) received.idempotencyKey = idempotency.key;
      let stored: ContactMessage;
      try {
        // Resolves only once the message is durable; a repeated key answers the message stored first.
        ({ message: stored } = await store.append(received));
      } catch (error) {
        // Any other failure leaves through the error handler as a 500: never a 201 for a lost message.
        if (!(error instanceof StoreUnavailableError)) throw error;
        request.log.warn({ err: error }, 'contact message not stored: the store is unavailable');
        const body = errorBody(503, 'Your message could not be stored just now. Please try again in a moment.');
        return reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS)).send(body);
      }
      if (fromPlainForm) return reply.redirect(REDIRECT_SENT, 303);
      return reply.code(201).send({ id: stored.id, receivedAt: stored.receivedAt });
    },
  );
};

export default contact;
