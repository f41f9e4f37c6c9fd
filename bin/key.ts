/**
 * `npm run key:create -- --name NAME`: creates an API key; the key is the last line printed (shown once).
 * `npm run key:revoke -- --id ID`: revokes one (the id key:create printed).
 * `npm run key:rotate-secret -- --id ID`: a new webhook signing secret for a key (the old one signs too for 24 hours).
 */
import { Args, runMain } from '../src/cli/args.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { checkId } from '../src/generations/limits.ts';
import { createApiKey, revokeApiKey, rotateWebhookSecret } from '../src/auth/keys.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const command = a.positional[0] ?? 'create';
  if (!['create', 'revoke', 'rotate-secret'].includes(command)) throw new Error(`unknown command ${command}`);
  const name = command === 'create' ? a.required('name') : '';
  const id = command === 'create' ? '' : checkId('--id', a.required('id'));
  a.end();
  const config = loadConfig();
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(db);
    if (command === 'revoke') {
      if (!(await revokeApiKey(db.prisma, id))) throw new Error(`no unrevoked API key ${id}`);
      console.log(`revoked API key ${id}: its requests are refused and its open sockets close within seconds`);
      return;
    }
    if (command === 'rotate-secret') {
      const secret = await rotateWebhookSecret(db.prisma, id);
      if (!secret) throw new Error(`no unrevoked API key ${id}`);
      console.log(`new webhook signing secret of API key ${id}; the old one signs messages too for 24 hours:`);
      console.log(secret);
      return;
    }
    const created = await createApiKey(db.prisma, name);
    console.log(`created API key ${created.id} ("${name}"); its webhook signing secret (Query.webhookSecret):`);
    console.log(created.webhookSecret);
    console.log('send the key as "Authorization: Bearer <key>". It is shown only now:');
    console.log(created.key);
  } finally {
    await db.close();
  }
});
