/**
 * The schema documents itself: every type, field, argument, input field and enum value of the public
 * GraphQL schema has a description for the API's users. Introspection types (__*) and the built-in
 * scalars are GraphQL's own and are skipped.
 */
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type GraphQLSchema,
  buildSchema,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isSpecifiedDirective,
  isSpecifiedScalarType,
} from 'graphql';
import { createGenerationPubSub } from '../src/events/bridge.ts';
import { buildGanvasSchema } from '../src/schema/build.ts';

const described = (d: string | null | undefined) => typeof d === 'string' && d.trim() !== '';

/** Every element of the schema without a non-empty description, as "Type", "Type.field", "Type.field(arg)". */
function undocumented(schema: GraphQLSchema): string[] {
  const missing: string[] = [];
  const check = (where: string, description: string | null | undefined) => {
    if (!described(description)) missing.push(where);
  };
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
    check(type.name, type.description);
    if (isObjectType(type) || isInterfaceType(type)) {
      for (const field of Object.values(type.getFields())) {
        check(`${type.name}.${field.name}`, field.description);
        for (const arg of field.args) check(`${type.name}.${field.name}(${arg.name})`, arg.description);
      }
    } else if (isInputObjectType(type)) {
      for (const field of Object.values(type.getFields())) check(`${type.name}.${field.name}`, field.description);
    } else if (isEnumType(type)) {
      for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
  }
  for (const directive of schema.getDirectives().filter((d) => !isSpecifiedDirective(d))) {
    check(`@${directive.name}`, directive.description);
    for (const arg of directive.args) check(`@${directive.name}(${arg.name})`, arg.description);
  }
  return missing.sort();
}

test('every type, field, argument, input field and enum value of the schema has a description', async () => {
  const schema = await buildGanvasSchema(createGenerationPubSub());
  const missing = undocumented(schema);
  const list = missing.map((m) => `\n  ${m}`).join('');
  assert.deepEqual(missing, [], `without a description (add one in src/schema/, then npm run schema):${list}`);
});

test("the check finds each kind of undocumented element, and skips GraphQL's own types", () => {
  const schema = buildSchema(`
    """Documented."""
    type Query {
      """Documented."""
      ok(
        """Documented."""
        a: Int
      ): Int
      bare(b: Int, """Documented.""" c: Int): Thing
      blank: Color
    }
    type Thing { x: String }
    """   """
    enum Color { """Documented.""" RED GREEN }
    """Documented."""
    input Filter { """Documented.""" y: Int z: Int }
    scalar Odd
    """Documented."""
    directive @tag(name: String) on FIELD_DEFINITION
  `);
  assert.deepEqual(undocumented(schema), [
    '@tag(name)',
    'Color',
    'Color.GREEN',
    'Filter.z',
    'Odd',
    'Query.bare',
    'Query.bare(b)',
    'Query.blank',
    'Thing',
    'Thing.x',
  ]);
});
