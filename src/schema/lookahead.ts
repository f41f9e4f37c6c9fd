/** What a query asks for below the field being resolved, read from its syntax (a resolver reads ahead with it). */
import {
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  getDirectiveValues,
  type FieldNode,
  type GraphQLResolveInfo,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';

/** Whether @skip and @include keep `node` in the answer with this request's variables (graphql-js's own rule). */
const kept = (node: SelectionNode, info: GraphQLResolveInfo): boolean =>
  getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if !== true &&
  getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;

/**
 * The fields a selection set asks for, those of its fragments included (each fragment once, as graphql-js does),
 * without those that @skip or @include leave out.
 */
function fieldsOf(set: SelectionSetNode | undefined, info: GraphQLResolveInfo, seen = new Set<string>()): FieldNode[] {
  return (set?.selections ?? []).flatMap((s) => {
    if (!kept(s, info)) return [];
    if (s.kind === Kind.FIELD) return [s];
    if (s.kind === Kind.INLINE_FRAGMENT) return fieldsOf(s.selectionSet, info, seen);
    if (seen.has(s.name.value)) return [];
    seen.add(s.name.value);
    return fieldsOf(info.fragments[s.name.value]?.selectionSet, info, seen);
  });
}

/** Whether the query asks, below the resolved field and `path`, for any of `fields`. */
export function asks(info: GraphQLResolveInfo, path: string[], fields: string[]): boolean {
  const below = path.reduce(
    (nodes, name) => nodes.flatMap((n) => fieldsOf(n.selectionSet, info)).filter((n) => n.name.value === name),
    info.fieldNodes as FieldNode[],
  );
  return below.some((n) => fieldsOf(n.selectionSet, info).some((f) => fields.includes(f.name.value)));
}
