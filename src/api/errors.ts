/**
 * Maps errors to GraphQL responses: ganvas's UserErrors keep their code and message; GraphQL's own
 * validation errors keep theirs; anything else is logged and answered as INTERNAL_SERVER_ERROR.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { UserError } from '../errors.ts';
import type { Logger } from '../ops/log.ts';

/** Apollo's and graphql-ws's formatError, logging what is not the caller's fault to `log`. */
export const errorFormatter =
  (log: Logger) =>
  (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = (error as { originalError?: unknown })?.originalError ?? error;
    if (original instanceof UserError)
      return { ...formatted, message: original.message, extensions: { code: original.code, ...original.details } };
    const code = formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return formatted;
    // GraphQL errors without a code are variable/argument coercion problems: the caller's input
    if (!(original instanceof Error) || original instanceof GraphQLError)
      return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_USER_INPUT' } };
    log.error({ err: original, path: formatted.path }, 'internal error');
    return {
      message: 'internal error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
