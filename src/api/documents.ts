/**
 * Documents sent over WebSocket, parsed and validated once per text: a client sends the same few documents with
 * other variables (examples/client.ts, the studio), so a subscription costs no parse and no validation after the
 * first (Apollo keeps the same kind of store for HTTP). Only documents that pass are kept, none over a tenth of
 * `maxChars`, the least recently used dropped past `maxChars` of text: a client sending a new document each time
 * costs what it did without this, and cannot empty the store with one large document.
 */
import { type DocumentNode, GraphQLError, type GraphQLSchema, specifiedRules, validate } from 'graphql';
import { parseDocument } from './errors.ts';
import { queryLimits } from '../schema/query-limits.ts';

/**
 * Documents' text kept at most: the few documents a client sends fit many times over (a subscription with a dozen
 * fields is about 150 characters). A parsed document holds about 85 bytes of heap per character of its text, so
 * this is about 20 MB at the most.
 */
export const DOCUMENT_CACHE_CHARS = 250_000;

export const isDocument = (d: DocumentNode | readonly GraphQLError[]): d is DocumentNode => !Array.isArray(d);

export class Documents {
  private readonly kept = new Map<string, DocumentNode>();
  private chars = 0;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly maxChars = DOCUMENT_CACHE_CHARS,
  ) {}

  /** The document of `query`, or why it does not parse (GRAPHQL_PARSE_FAILED) or validate (ganvas's rules too). */
  check(query: string): DocumentNode | readonly GraphQLError[] {
    const kept = this.kept.get(query);
    if (kept) {
      this.kept.delete(query); // to the end: the most recently used
      this.kept.set(query, kept);
      return kept;
    }
    const document = parseDocument(query);
    if (document instanceof GraphQLError) return [document];
    const errors = validate(this.schema, document, [...specifiedRules, queryLimits]);
    if (errors.length > 0) return errors;
    if (query.length > this.maxChars / 10) return document; // one document does not push out the others
    this.kept.set(query, document);
    this.chars += query.length;
    for (const [q] of this.kept) {
      if (this.chars <= this.maxChars) break;
      this.kept.delete(q);
      this.chars -= q.length;
    }
    return document;
  }

  get size(): number {
    return this.kept.size;
  }
}
