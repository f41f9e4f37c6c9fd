/**
 * Validation rules that refuse queries too deep or too large before they run: the schema has cycles
 * (generation -> images -> generation ...), aliases can repeat a field many times, and lists multiply what is
 * below them.
 */
import {
  GraphQLError,
  Kind,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  getNamedType,
  getNullableType,
  isIntrospectionType,
  isListType,
  isObjectType,
  type ASTVisitor,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { LIMITS } from '../generations/limits.ts';

export const MAX_DEPTH = 8;
export const MAX_FIELDS = 250;
/**
 * Fields at the top of an operation: each is a resolver that reads the database, and they run at once, so one
 * request of many (aliases of `usage`, say) would hold the whole connection pool (10) and keep other keys waiting.
 */
export const MAX_TOP_FIELDS = 10;
/** Objects a response may hold at most, each list counted full (a page of 100 with all its images: 1,900). */
export const MAX_NODES = 10_000;
/** Objects a list without `first` holds at most, for the count: a generation's images (16 at most). */
export const LIST_BOUND = Math.max(LIMITS.count.max, LIMITS.steps.max);

interface Size {
  depth: number;
  fields: number;
  /** Objects the selection returns, each list counted at its bound. */
  nodes: number;
}

/**
 * How many times a field's selection is returned per parent object: a field with a `first` argument (a page)
 * its value (the largest page when a variable gives it, as validation does not see values, or when the value is
 * larger), a page's `edges`
 * once more (the page counted them), any other list of objects LIST_BOUND.
 */
function multiplier(def: GraphQLField<unknown, unknown> | undefined, field: FieldNode): number {
  if (!def) return 1; // an unknown field is another rule's error
  // the schema's own description (introspection): in memory, bounded by the schema, and read whole by every tool
  if (isIntrospectionType(getNamedType(def.type))) return 1;
  if (def.args.some((a) => a.name === 'first')) {
    const arg = field.arguments?.find((a) => a.name.value === 'first')?.value;
    if (!arg) return LIMITS.pageSize.default;
    // a page over the largest is refused when it runs (BAD_USER_INPUT): counted at the largest here
    return arg.kind === Kind.INT ? Math.min(Math.max(1, Number(arg.value)), LIMITS.pageSize.max) : LIMITS.pageSize.max;
  }
  if (field.name.value === 'edges' || !isListType(getNullableType(def.type))) return 1;
  return LIST_BOUND;
}

/**
 * Depth, field count and objects of a selection set, in time linear in the document: each fragment is measured
 * once and its size reused at every spread (a document of fragments that each spread the next twice would
 * otherwise take time exponential in its length). Counts are capped just past the limits.
 */
function measurer(
  schema: GraphQLSchema,
  fragments: Map<string, FragmentDefinitionNode>,
): (set: SelectionSetNode, type: GraphQLNamedType | undefined) => Size {
  const sizes = new Map<string, Size>();
  const open = new Set<string>();
  const none: Size = { depth: 0, fields: 0, nodes: 0 };
  const fragment = (name: string): Size => {
    const known = sizes.get(name);
    if (known) return known;
    const def = fragments.get(name);
    if (!def || open.has(name)) return none; // cycles and unknown fragments are other rules' errors
    open.add(name);
    const size = measure(def.selectionSet, schema.getType(def.typeCondition.name.value));
    open.delete(name);
    sizes.set(name, size);
    return size;
  };
  /** Depth below `set` (1 for a set of leaf fields), fields and objects in it; `type`: what it selects on. */
  const measure = (set: SelectionSetNode, type: GraphQLNamedType | undefined): Size => {
    let depth = 1;
    let fields = 0;
    let nodes = 0;
    for (const s of set.selections) {
      let inner: Size;
      if (s.kind === Kind.FRAGMENT_SPREAD) inner = fragment(s.name.value);
      else if (s.kind === Kind.INLINE_FRAGMENT)
        inner = measure(s.selectionSet, s.typeCondition ? schema.getType(s.typeCondition.name.value) : type);
      else if (!s.selectionSet) inner = { depth: 1, fields: 1, nodes: 0 };
      else {
        const name = s.name.value;
        const def =
          name === '__schema'
            ? SchemaMetaFieldDef
            : name === '__type'
              ? TypeMetaFieldDef
              : isObjectType(type)
                ? type.getFields()[name]
                : undefined;
        const below = measure(s.selectionSet, def && getNamedType(def.type));
        inner = {
          // a type's `ofType` unwraps a list or non-null: one object, and the introspection query every tool sends
          // (GraphiQL's included) nests it 7 deep; it still counts as fields and objects
          depth: below.depth + (type?.name === '__Type' && name === 'ofType' ? 0 : 1),
          fields: below.fields + 1,
          nodes: Math.min(multiplier(def, s) * (1 + below.nodes), MAX_NODES + 1),
        };
      }
      depth = Math.max(depth, inner.depth);
      fields = Math.min(fields + inner.fields, MAX_FIELDS + 1);
      nodes = Math.min(nodes + inner.nodes, MAX_NODES + 1);
    }
    return { depth, fields, nodes };
  };
  return measure;
}

/** The fields at the top of `set`, its fragments' at that level included (each fragment once: merged, not repeated). */
function topFields(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>): number {
  let n = 0;
  for (const s of set.selections) {
    if (s.kind === Kind.FIELD) n += s.name.value === '__typename' ? 0 : 1;
    else if (s.kind === Kind.INLINE_FRAGMENT) n += topFields(s.selectionSet, fragments, seen);
    else if (!seen.has(s.name.value)) {
      seen.add(s.name.value);
      const f = fragments.get(s.name.value);
      if (f) n += topFields(f.selectionSet, fragments, seen);
    }
  }
  return n;
}

export const queryLimits: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  Document(doc) {
    const fragments = new Map(
      doc.definitions
        .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((f) => [f.name.value, f]),
    );
    const schema = context.getSchema();
    const measure = measurer(schema, fragments);
    for (const def of doc.definitions) {
      if (def.kind !== Kind.OPERATION_DEFINITION) continue;
      const { depth, fields, nodes } = measure(def.selectionSet, schema.getRootType(def.operation) ?? undefined);
      const refuse = (message: string) =>
        context.reportError(new GraphQLError(message, { nodes: [def], extensions: { code: 'QUERY_TOO_COMPLEX' } }));
      const top = topFields(def.selectionSet, fragments, new Set());
      if (top > MAX_TOP_FIELDS)
        refuse(`operation has ${top} fields at its top; the limit is ${MAX_TOP_FIELDS} (send more requests)`);
      else if (depth > MAX_DEPTH) refuse(`query is ${depth} levels deep; the limit is ${MAX_DEPTH}`);
      else if (fields > MAX_FIELDS) refuse(`query selects ${fields} fields; the limit is ${MAX_FIELDS}`);
      else if (nodes > MAX_NODES)
        refuse(
          `query may return more than ${MAX_NODES} objects (each list counted full: a page at its first, any other list at ${LIST_BOUND})`,
        );
    }
  },
});
