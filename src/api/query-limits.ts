/**
 * Validation rules that refuse queries too deep or too large before they run: the schema has cycles
 * (generation -> images -> generation ...) and aliases can repeat a field many times.
 */
import { GraphQLError, Kind, type ASTVisitor, type FragmentDefinitionNode, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';

export const MAX_DEPTH = 8;
export const MAX_FIELDS = 250;

function measure(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, depth: number, seen: Set<string>): { depth: number; fields: number } {
  let maxDepth = depth;
  let fields = 0;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) {
      fields += 1;
      if (s.selectionSet) {
        const inner = measure(s.selectionSet, fragments, depth + 1, seen);
        maxDepth = Math.max(maxDepth, inner.depth);
        fields += inner.fields;
      }
    } else {
      const inner =
        s.kind === Kind.INLINE_FRAGMENT
          ? measure(s.selectionSet, fragments, depth, seen)
          : seen.has(s.name.value) || !fragments.has(s.name.value)
            ? { depth, fields: 0 } // cycles and unknown fragments are other rules' errors
            : measure(fragments.get(s.name.value)!.selectionSet, fragments, depth, new Set([...seen, s.name.value]));
      maxDepth = Math.max(maxDepth, inner.depth);
      fields += inner.fields;
    }
  }
  return { depth: maxDepth, fields };
}

export const queryLimits: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  Document(doc) {
    const fragments = new Map(doc.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]));
    for (const def of doc.definitions) {
      if (def.kind !== Kind.OPERATION_DEFINITION) continue;
      const { depth, fields } = measure(def.selectionSet, fragments, 1, new Set());
      if (depth > MAX_DEPTH) context.reportError(new GraphQLError(`query is ${depth} levels deep; the limit is ${MAX_DEPTH}`, { nodes: [def], extensions: { code: 'QUERY_TOO_COMPLEX' } }));
      else if (fields > MAX_FIELDS) context.reportError(new GraphQLError(`query selects ${fields} fields; the limit is ${MAX_FIELDS}`, { nodes: [def], extensions: { code: 'QUERY_TOO_COMPLEX' } }));
    }
  },
});
