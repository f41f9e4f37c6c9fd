/**
 * API keys (each command opens DATABASE_URL, or the embedded database, and migrates it first):
 * `npm run key:create -- --name NAME [limits]`: creates a key; prints its webhook signing secret, then the key
 *   as the last line (shown once).
 * `npm run key:list`: every key with its limits (no secrets).
 * `npm run key:revoke -- --id ID | --name NAME`: revokes a key.
 * `npm run key:rotate-secret -- --id ID | --name NAME`: a new webhook signing secret (the old one signs too for 24 h).
 * `npm run key:limits -- --id ID | --name NAME [limits]`: sets a key's own limits.
 * Limits: `--rate N` (generations a minute), `--queued N` (queued or running at once), `--images-per-day N`;
 * `default` instead of N: the server's (RATE_LIMIT_PER_MINUTE, QUEUE_LIMIT, IMAGES_PER_DAY).
 */
import { Args, runMain } from '../src/cli/args.ts';
import { describeDatabase, loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/db/database.ts';
import { migrate, pendingMigrations } from '../src/db/migrate.ts';
import { checkId } from '../src/generations/limits.ts';
import {
  type KeyLimits,
  createApiKey,
  keyIdByName,
  listApiKeys,
  revokeApiKey,
  rotateWebhookSecret,
  setKeyLimits,
} from '../src/auth/keys.ts';
import type { PrismaClient } from '../src/db/generated/client.ts';

const COMMANDS = ['create', 'list', 'revoke', 'rotate-secret', 'limits'] as const;

/** The largest limit the database holds (a 32-bit integer column). */
const MAX_LIMIT = 2_147_483_647;

/** The limits given on the command line: a number, or `default` (null); absent ones are left out. */
function limitsOf(a: Args): Partial<KeyLimits> {
  const limits: Partial<KeyLimits> = {};
  for (const [option, field] of [
    ['rate', 'rateLimitPerMinute'],
    ['queued', 'queueLimit'],
    ['images-per-day', 'imagesPerDay'],
  ] as const) {
    const raw = a.string(option);
    if (raw === undefined) continue;
    const n = Number(raw);
    if (raw !== 'default' && !(Number.isInteger(n) && n >= 1 && n <= MAX_LIMIT))
      throw new Error(`--${option} must be a positive integer up to ${MAX_LIMIT} or "default", got "${raw}"`);
    limits[field] = raw === 'default' ? null : n;
  }
  return limits;
}

const limit = (n: number | null) => (n === null ? 'default' : String(n));

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const command = (a.positional[0] ?? 'create') as (typeof COMMANDS)[number];
  if (!COMMANDS.includes(command)) throw new Error(`unknown command "${command}" (${COMMANDS.join(', ')})`);
  // list takes neither: --name there is an unknown option, not a filter it would ignore
  const name = command === 'create' ? a.required('name') : command === 'list' ? undefined : a.string('name');
  const rawId = command === 'create' || command === 'list' ? undefined : a.string('id');
  const limits = command === 'create' || command === 'limits' ? limitsOf(a) : {};
  a.end();
  if (command !== 'create' && command !== 'list' && (rawId === undefined) === (name === undefined))
    throw new Error('give exactly one of --id and --name');
  if (command === 'limits' && Object.keys(limits).length === 0)
    throw new Error('give the limits to set: --rate N, --queued N, --images-per-day N (each N or "default")');
  const config = loadConfig();
  const db = await openConfiguredDatabase(config);
  try {
    // an embedded database is this checkout's own; a server's is migrated by its release (npm run db:migrate), not
    // by a key command run from another checkout (a newer one would apply the next release's migrations)
    console.error(`database: ${describeDatabase(config)}`);
    if (db.kind === 'pglite') await migrate(db);
    else {
      const pending = await pendingMigrations(db);
      if (pending.length)
        throw new Error(
          `the database is ${pending.length} migration(s) behind this checkout (${pending[0]} first): ` +
            'run npm run db:migrate (or deploy the release) first',
        );
    }
    const keyId = (prisma: PrismaClient) =>
      rawId ? Promise.resolve(checkId('--id', rawId)) : keyIdByName(prisma, name!);
    if (command === 'list') {
      const rows = [
        ['id', 'created', 'revoked', 'rate', 'queued', 'images/day', 'name'],
        ...(await listApiKeys(db.prisma)).map((k) => [
          k.id,
          k.createdAt.toISOString().slice(0, 10),
          k.revokedAt?.toISOString().slice(0, 10) ?? '-',
          limit(k.rateLimitPerMinute),
          limit(k.queueLimit),
          limit(k.imagesPerDay),
          k.name,
        ]),
      ];
      // each column as wide as its widest value ("default" included); the limits right-aligned, the name as it is
      const width = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
      const LIMITS = [3, 4, 5];
      for (const r of rows)
        console.log(
          r
            .map((v, c) => (c === r.length - 1 ? v : LIMITS.includes(c) ? v.padStart(width[c]) : v.padEnd(width[c])))
            .join('  '),
        );
      return;
    }
    if (command === 'create') {
      const created = await createApiKey(db.prisma, name!, limits);
      console.log(`created API key ${created.id} ("${name}"); its webhook signing secret (Query.webhookSecret):`);
      console.log(created.webhookSecret);
      console.log('send the key as "Authorization: Bearer <key>". It is shown only now:');
      console.log(created.key);
      return;
    }
    const id = await keyId(db.prisma);
    if (command === 'revoke') {
      if (!(await revokeApiKey(db.prisma, id))) throw new Error(`no unrevoked API key ${id}`);
      console.log(`revoked API key ${id}: its requests are refused and its open sockets close within seconds`);
    } else if (command === 'rotate-secret') {
      const secret = await rotateWebhookSecret(db.prisma, id);
      if (!secret) throw new Error(`no unrevoked API key ${id}`);
      console.log(`new webhook signing secret of API key ${id}; the old one signs messages too for 24 hours:`);
      console.log(secret);
    } else {
      if (!(await setKeyLimits(db.prisma, id, limits))) throw new Error(`no unrevoked API key ${id}`);
      console.log(`limits of API key ${id} set: ${JSON.stringify(limits)} (null: the server's)`);
    }
  } finally {
    await db.close();
  }
});
