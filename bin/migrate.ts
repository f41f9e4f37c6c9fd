/** `npm run db:migrate`: applies prisma/migrations to DATABASE_URL (or the embedded database). */
import { runMain } from '../src/cli/args.ts';
import { describeDatabase, loadConfig } from '../src/config.ts';
import { openConfiguredDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';

runMain(async () => {
  const config = loadConfig();
  const db = await openConfiguredDatabase(config);
  try {
    console.log(`database: ${describeDatabase(config)}`);
    const applied = await migrate(db, console.log);
    for (const name of applied) console.log(`applied migration ${name}`);
    console.log(applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date');
  } finally {
    await db.close();
  }
});
