/** `npm run key:create -- --name NAME`: creates an API key; the key is the last line printed (shown once). */
import { Args, runMain } from '../cli/args.ts';
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createApiKey } from './keys.ts';

runMain(async () => {
  const a = new Args(process.argv.slice(2));
  const config = loadConfig();
  const db = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  try {
    await migrate(db);
    const { id, key } = await createApiKey(db.prisma, a.required('name'));
    console.log(`created API key ${id} ("${a.required('name')}"); send it as "Authorization: Bearer <key>". It is shown only now:`);
    console.log(key);
  } finally {
    await db.close();
  }
});
