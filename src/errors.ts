/**
 * The errors a caller can fix or wait out, as a closed set of codes that become GraphQL `extensions.code`: its input,
 * its key, its limits, and SERVICE_UNAVAILABLE for what is missing for a moment on the server's side (send again
 * after retryAfterSeconds). Anything else thrown is a bug: it is logged and answered as INTERNAL_SERVER_ERROR without
 * details.
 */
export const USER_ERROR_CODES = [
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'UNAUTHENTICATED',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
] as const;
export type UserErrorCode = (typeof USER_ERROR_CODES)[number];

export class UserError extends Error {
  constructor(
    readonly code: UserErrorCode,
    message: string,
    /** More for the client, e.g. retryAfterSeconds. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/**
 * `field`: the input field at fault, where there is one (`extensions.field`: a form can show the error beside it);
 * `more`: other extensions.
 */
export const badInput = (message: string, field?: string, more: Record<string, unknown> = {}) =>
  new UserError('BAD_USER_INPUT', message, field === undefined ? more : { field, ...more });
export const notFound = (message: string) => new UserError('NOT_FOUND', message);
export const unauthenticated = (message: string) => new UserError('UNAUTHENTICATED', message);
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new UserError('RATE_LIMITED', message, { retryAfterSeconds });
export const unavailable = (message: string, retryAfterSeconds: number) =>
  new UserError('SERVICE_UNAVAILABLE', message, { retryAfterSeconds });

/** The message of anything thrown, for logs and wrapped errors. */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
