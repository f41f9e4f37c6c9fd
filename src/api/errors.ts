/**
 * Maps errors to GraphQL responses: ganvas's UserErrors keep their code and message; GraphQL's own
 * validation errors keep theirs (a validation rule's own code, QUERY_TOO_COMPLEX, over Apollo's wrapper's); a database
 * that cannot be reached is SERVICE_UNAVAILABLE (send again); anything else is logged and answered as
 * INTERNAL_SERVER_ERROR.
 */
import { type DocumentNode, GraphQLError, type GraphQLFormattedError, parse } from 'graphql';
import { UserError, messageOf } from '../errors.ts';
import { isUnavailable } from '../db/unavailable.ts';
import type { Logger } from '../ops/log.ts';

/** What a request that could not reach the database is answered (SERVICE_UNAVAILABLE): it may be sent again. */
export const UNAVAILABLE_MESSAGE =
  'the database cannot be reached for a moment: send the request again (a creating one with the same idempotencyKey)';
/** Its extensions, wherever it is answered (a resolver, the key's check, an image route). */
export const UNAVAILABLE_EXTENSIONS = { code: 'SERVICE_UNAVAILABLE', retryAfterSeconds: 1 } as const;

/**
 * Whether a GraphQL error without a code is the caller's input that did not coerce: a variable's value (raised before
 * any field runs, so it has no path) or an argument's (graphql-js's getArgumentValues: 'Argument "x" ...', e.g. a
 * null variable in a non-null argument). Any other one with a path is a field's value the server could not
 * serialise ("Int cannot represent ..."): a bug, INTERNAL_SERVER_ERROR.
 */
const callersCoercion = (original: Error, formatted: GraphQLFormattedError): boolean =>
  original instanceof GraphQLError && (!formatted.path || original.message.startsWith('Argument "'));

/** Apollo's and graphql-ws's formatError, logging what is not the caller's fault to `log`. */
export const errorFormatter =
  (log: Logger) =>
  (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = (error as { originalError?: unknown })?.originalError ?? error;
    if (original instanceof UserError)
      return { ...formatted, message: original.message, extensions: { code: original.code, ...original.details } };
    // Apollo wraps a validation rule's error in its ValidationError, whose GRAPHQL_VALIDATION_FAILED hides the rule's
    const code = (original instanceof GraphQLError && original.extensions?.code) || formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR')
      return { ...formatted, extensions: { ...formatted.extensions, code } };
    if (!(original instanceof Error) || callersCoercion(original, formatted))
      return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_USER_INPUT' } };
    if (isUnavailable(original)) {
      log.warn({ path: formatted.path }, `database unavailable: ${messageOf(original).split('\n').at(-1)}`);
      return {
        message: UNAVAILABLE_MESSAGE,
        locations: formatted.locations,
        path: formatted.path,
        extensions: UNAVAILABLE_EXTENSIONS,
      };
    }
    log.error({ err: original, path: formatted.path }, 'internal error');
    return {
      message: 'internal error',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };

/**
 * The code Apollo gives a document refused before it runs (over HTTP), for graphql-ws's refusals, which carry none:
 * GRAPHQL_VALIDATION_FAILED for one the schema does not validate, OPERATION_RESOLUTION_FAILURE for one whose
 * operation cannot be told; a validation rule's own code (QUERY_TOO_COMPLEX) stays. (One that does not parse has
 * its code from parseDocument.)
 */
export function refusedBeforeRunning(e: GraphQLError): GraphQLError {
  if (e.extensions?.code || e.originalError) return e;
  const code = /^Unable to identify operation/.test(e.message)
    ? 'OPERATION_RESOLUTION_FAILURE'
    : 'GRAPHQL_VALIDATION_FAILED';
  return new GraphQLError(e.message, {
    nodes: e.nodes,
    source: e.source,
    positions: e.positions,
    extensions: { code },
  });
}

/**
 * The document, or why it does not parse, as Apollo answers it over HTTP (GRAPHQL_PARSE_FAILED): a syntax error, or
 * one nested too deep for the parser (a RangeError, not a GraphQLError).
 */
export function parseDocument(query: string): DocumentNode | GraphQLError {
  try {
    return parse(query);
  } catch (err) {
    const extensions = { code: 'GRAPHQL_PARSE_FAILED' };
    if (err instanceof GraphQLError)
      return new GraphQLError(err.message, { source: err.source, positions: err.positions, extensions });
    return new GraphQLError('Syntax Error: the document is nested too deep to parse', { extensions });
  }
}
