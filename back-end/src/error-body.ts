import { STATUS_CODES } from 'node:http';
import { Type, type Static } from 'typebox';

/**
 * The one JSON shape of every error answer: the back-end's (plugins/errors.ts, routes/contact.ts) and the
 * proxies' own, written in proxy/proxy.conf and deploy/swarm/haproxy-errors/ (error-body.test.ts holds them to it).
 */
export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599 }),
    error: Type.String(),
    message: Type.String(),
    /** For a 400 about a form: each invalid field, with what is wrong with it in the visitor's words. */
    fields: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
export type ErrorBody = Static<typeof ErrorBody>;

/** The body of an error answer; `error` is the status code's reason phrase, as Node names it. */
export function errorBody(statusCode: number, message: string, fields?: Record<string, string>): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, ...(fields && { fields }) };
}
