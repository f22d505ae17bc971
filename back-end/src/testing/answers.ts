/** What every server error answers: a generic message, so no stack trace or internal detail leaks. */
export const SERVER_ERROR_BODY = {
  statusCode: 500,
  error: 'Internal Server Error',
  message: 'Something went wrong on our side.',
};
