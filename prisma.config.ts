import { defineConfig } from 'prisma/config';

// DATABASE_URL may be unset (generate needs none; embedded mode uses PGlite).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
