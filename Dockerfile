# The API image: the GraphQL API (the default command), the migration and API key creation:
#   docker run ganvas-api                                             # API on :4000 (DATABASE_URL required)
#   docker run ganvas-api node -r @swc-node/register bin/migrate.ts   # migrate (once per release)
#   docker run ganvas-api node -r @swc-node/register bin/key.ts --name NAME   # an API key
# Node 22 LTS; no model runtime (the optional libtensorflow packages are not installed here).

FROM node:22-bookworm-slim AS build
WORKDIR /app
# dependencies first (a layer that changes only with the lockfile); their install scripts run below,
# once the whole source is here (postinstall builds the studio from web/ and the Prisma client)
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run postinstall \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@tensorflow/tfjs-node node_modules/@tensorflow/tfjs-node-gpu web/src

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
COPY --from=build --chown=node:node /app ./
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1: SIGTERM reaches ganvas, which drains its connections and exits 0
CMD ["node", "-r", "@swc-node/register", "bin/api.ts"]
