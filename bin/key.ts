/**
 * `npm run key:create -- --name NAME`: creates an API key; the key is the last line printed (shown once).
 * `npm run key:revoke -- --id ID`: revokes one (the id key:create printed).
 */
import { Args, runMain } from '../src/cli/args.ts';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { checkId } from '../src/generations/limits.ts';
import { createApiKey, revokeApiKey } from '../src/auth/keys.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const revoking = a.positional[0] === 'revoke';
  const name = revoking ? '' : a.required('name');
  const revoke = revoking ? a.required('id') : '';
  a.end();
  const config = loadConfig();
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(db);
    if (revoking) {
      if (!(await revokeApiKey(db.prisma, checkId('--id', revoke)))) throw new Error(`no unrevoked API key ${revoke}`);
      console.log(`revoked API key ${revoke}: its requests are refused and its open sockets close within seconds`);
      return;
    }
    const { id, key } = await createApiKey(db.prisma, name);
    console.log(`created API key ${id} ("${name}"); send it as "Authorization: Bearer <key>". It is shown only now:`);
    console.log(key);
  } finally {
    await db.close();
  }
});
