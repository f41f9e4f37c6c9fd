/**
 * Validation rules that refuse queries too deep or too large before they run: the schema has cycles
 * (generation -> images -> generation ...) and aliases can repeat a field many times.
 */
import {
  GraphQLError,
  Kind,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

export const MAX_DEPTH = 8;
export const MAX_FIELDS = 250;

interface Size {
  depth: number;
  fields: number;
}

/**
 * Depth and field count of a selection set, in time linear in the document: each fragment is measured
 * once and its size reused at every spread (a document of fragments that each spread the next twice would
 * otherwise take time exponential in its length). Counts are capped just past the limit.
 */
function measurer(fragments: Map<string, FragmentDefinitionNode>): (set: SelectionSetNode) => Size {
  const sizes = new Map<string, Size>();
  const open = new Set<string>();
  const fragment = (name: string): Size => {
    const known = sizes.get(name);
    if (known) return known;
    const def = fragments.get(name);
    if (!def || open.has(name)) return { depth: 0, fields: 0 }; // cycles and unknown fragments are other rules' errors
    open.add(name);
    const size = measure(def.selectionSet);
    open.delete(name);
    sizes.set(name, size);
    return size;
  };
  /** Depth below `set` (1 for a set of leaf fields) and fields in it. */
  const measure = (set: SelectionSetNode): Size => {
    let depth = 1;
    let fields = 0;
    for (const s of set.selections) {
      let inner: Size;
      if (s.kind === Kind.FRAGMENT_SPREAD) inner = fragment(s.name.value);
      else if (s.kind === Kind.INLINE_FRAGMENT) inner = measure(s.selectionSet);
      else if (!s.selectionSet) inner = { depth: 1, fields: 1 };
      else {
        const below = measure(s.selectionSet);
        inner = { depth: below.depth + 1, fields: below.fields + 1 };
      }
      depth = Math.max(depth, inner.depth);
      fields = Math.min(fields + inner.fields, MAX_FIELDS + 1);
    }
    return { depth, fields };
  };
  return measure;
}

export const queryLimits: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  Document(doc) {
    const fragments = new Map(
      doc.definitions
        .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((f) => [f.name.value, f]),
    );
    const measure = measurer(fragments);
    for (const def of doc.definitions) {
      if (def.kind !== Kind.OPERATION_DEFINITION) continue;
      const { depth, fields } = measure(def.selectionSet);
      if (depth > MAX_DEPTH)
        context.reportError(
          new GraphQLError(`query is ${depth} levels deep; the limit is ${MAX_DEPTH}`, {
            nodes: [def],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
      else if (fields > MAX_FIELDS)
        context.reportError(
          new GraphQLError(`query selects ${fields} fields; the limit is ${MAX_FIELDS}`, {
            nodes: [def],
            extensions: { code: 'QUERY_TOO_COMPLEX' },
          }),
        );
    }
  },
});
