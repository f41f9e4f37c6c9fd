/** What a query asks for below the field being resolved, read from its syntax (a resolver reads ahead with it). */
import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

/** The fields a selection set asks for, those of its fragments included (each fragment once, as graphql-js does). */
function fieldsOf(set: SelectionSetNode | undefined, info: GraphQLResolveInfo, seen = new Set<string>()): FieldNode[] {
  return (set?.selections ?? []).flatMap((s) => {
    if (s.kind === Kind.FIELD) return [s];
    if (s.kind === Kind.INLINE_FRAGMENT) return fieldsOf(s.selectionSet, info, seen);
    if (seen.has(s.name.value)) return [];
    seen.add(s.name.value);
    return fieldsOf(info.fragments[s.name.value]?.selectionSet, info, seen);
  });
}

/** Whether the query asks, below the resolved field and `path`, for any of `fields` (@skip and @include aside). */
export function asks(info: GraphQLResolveInfo, path: string[], fields: string[]): boolean {
  const below = path.reduce(
    (nodes, name) => nodes.flatMap((n) => fieldsOf(n.selectionSet, info)).filter((n) => n.name.value === name),
    info.fieldNodes as FieldNode[],
  );
  return below.some((n) => fieldsOf(n.selectionSet, info).some((f) => fields.includes(f.name.value)));
}
