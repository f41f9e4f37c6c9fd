/**
 * `npm run schema` also writes examples/schema-types.ts: TypeScript types of every enum, object and input
 * type of schema.graphql, for clients (examples/client.ts uses them). Scalars: ID, String and DateTime as
 * string, Int and Float as number, Boolean as boolean.
 */
import {
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLOutputType,
  type GraphQLInputType,
  type GraphQLSchema,
  GraphQLEnumType,
  GraphQLInputObjectType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
} from 'graphql';

const SCALARS: Record<string, string> = {
  ID: 'string',
  String: 'string',
  DateTime: 'string',
  Int: 'number',
  Float: 'number',
  Boolean: 'boolean',
};

function tsType(t: GraphQLOutputType | GraphQLInputType, nullable = true): string {
  if (t instanceof GraphQLNonNull) return tsType(t.ofType, false);
  const inner =
    t instanceof GraphQLList
      ? `${tsType(t.ofType)}[]`
      : t instanceof GraphQLScalarType
        ? (SCALARS[t.name] ?? 'unknown')
        : t.name;
  return nullable ? `${inner} | null` : inner;
}

const doc = (d: string | null | undefined, indent = '') => (d ? `${indent}/** ${d.replace(/\n/g, ' ')} */\n` : '');

export function schemaTypes(schema: GraphQLSchema): string {
  const out = ['// Generated from the GraphQL schema (schema.graphql) by `npm run schema`; do not edit.\n'];
  const types = Object.values(schema.getTypeMap())
    .filter((t) => !t.name.startsWith('__'))
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const t of types) {
    if (t instanceof GraphQLEnumType)
      out.push(
        `${doc(t.description)}export type ${t.name} = ${t
          .getValues()
          .map((v) => `'${v.name}'`)
          .join(' | ')};\n`,
      );
    else if (t instanceof GraphQLObjectType || t instanceof GraphQLInputObjectType) {
      const fields = Object.values(
        t.getFields() as Record<string, GraphQLField<unknown, unknown> | GraphQLInputField>,
      ).map((f) => {
        const optional = t instanceof GraphQLInputObjectType && !(f.type instanceof GraphQLNonNull) ? '?' : '';
        return `${doc(f.description, '  ')}  ${f.name}${optional}: ${tsType(f.type)};`;
      });
      out.push(`${doc(t.description)}export interface ${t.name} {\n${fields.join('\n')}\n}\n`);
    }
  }
  return out.join('\n');
}
