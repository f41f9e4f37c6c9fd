/**
 * The API server: GraphQL over HTTP (Apollo) and graphql-ws on the same path, PNGs at /images/<id>.png,
 * /healthz. It reads and writes Postgres and hears workers through LISTEN; it runs no model.
 */
import { type IncomingMessage, createServer, type Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { useServer } from 'graphql-ws/use/ws';
import { type WebSocket, WebSocketServer } from 'ws';
import { DEFAULT_WS_LIMITS, type WsLimits } from '../config.ts';
import { isLocalRequest } from './open-mode.ts';
import { SocketsByKey } from './sockets.ts';
import type { Database } from '../db/database.ts';
import { bridgeNotifications, createGenerationPubSub } from '../events/bridge.ts';
import type { ModelCatalog } from '../generations/models.ts';
import { GenerationService, type Quotas } from '../generations/service.ts';
import { bearer, keyOwner } from '../auth/keys.ts';
import { UserError, unauthenticated } from '../errors.ts';
import { GraphQLError, specifiedRules, validate } from 'graphql';
import { queryLimits } from './query-limits.ts';
import { buildGanvasSchema } from '../schema/build.ts';
import { type Context, ImagesOf } from '../schema/context.ts';
import { decodePng, encodeApng } from '../images/png.ts';
import { formatError } from './errors.ts';

export interface ApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * keys: every request carries `Authorization: Bearer <key>` (HTTP header, or graphql-ws connection_init
 * payload `authorization`) and sees only its own work. open: no keys, everything is one owner's (only for
 * the embedded mode on localhost).
 */
export type AuthMode = 'keys' | 'open';

export async function startApiServer(opts: { db: Database; models: ModelCatalog; port: number; host?: string; webDir?: string | null; auth: AuthMode; quotas?: Quotas; ws?: WsLimits }): Promise<ApiServer> {
  const limits = opts.ws ?? DEFAULT_WS_LIMITS;
  const pubsub = createGenerationPubSub();
  const unlisten = await bridgeNotifications(opts.db, pubsub);
  const service = new GenerationService(opts.db.prisma, opts.models, opts.quotas);
  const schema = await buildGanvasSchema(pubsub);

  /** The context of one request, or UNAUTHENTICATED. */
  const contextFor = async (authorization: unknown): Promise<Context & { key: string | null }> => {
    if (opts.auth === 'open') return { service, models: opts.models, pubsub, owner: null, images: new ImagesOf(service), key: null };
    const key = bearer(authorization);
    const owner = key ? await keyOwner(opts.db.prisma, key) : null;
    if (!owner || !key) throw unauthenticated(key ? 'the API key is not valid' : 'send an API key: "Authorization: Bearer <key>" (npm run key:create)');
    return { service, models: opts.models, pubsub, owner, images: new ImagesOf(service), key };
  };

  const app = express();
  const http: Server = createServer(app);
  const localOnly = opts.auth === 'open';
  const wss = new WebSocketServer({ server: http, path: '/graphql', maxPayload: limits.maxPayloadBytes, verifyClient: ({ req }: { req: IncomingMessage }) => !localOnly || isLocalRequest(req) });
  const sockets = new SocketsByKey(limits.connectionsPerKey);
  const recheck = setInterval(() => void sockets.closeRevoked(async (key) => (await keyOwner(opts.db.prisma, key)) !== null), limits.recheckMs);
  recheck.unref();
  type Extra = { socket: WebSocket; context?: Context & { key: string | null } };
  const ws = useServer(
    {
      schema,
      connectionInitWaitTimeout: limits.initTimeoutMs,
      validate: (schema, document) => validate(schema, document, [...specifiedRules, queryLimits]),
      // the key comes once, in connection_init; a connection without a valid one is refused, and so is
      // one more than its key may hold
      onConnect: async (ctx) => {
        const extra = ctx.extra as unknown as Extra;
        try {
          extra.context = await contextFor(ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization);
        } catch {
          return false;
        }
        return extra.context.key === null || sockets.add(extra.context.key, extra.socket);
      },
      onSubscribe: (ctx) => {
        // graphql-ws has already entered this operation in ctx.subscriptions
        if (Object.keys(ctx.subscriptions).length <= limits.subscriptionsPerConnection) return undefined;
        return [new GraphQLError(`a connection holds at most ${limits.subscriptionsPerConnection} operations at once`, { extensions: { code: 'RATE_LIMITED' } })];
      },
      context: (ctx) => (ctx.extra as unknown as Extra).context!,
      // the same codes over WebSocket as over HTTP
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e)),
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : undefined,
    },
    wss,
  );
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // the schema is the public contract: tools (GraphiQL, codegen, IDEs) read it by introspection, also under NODE_ENV=production
    introspection: true,
    validationRules: [queryLimits],
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: http }),
      { async serverWillStart() { return { async drainServer() { await ws.dispose(); } }; } },
    ],
  });
  await apollo.start();

  app.disable('x-powered-by');
  if (localOnly)
    app.use((req, res, next) => (isLocalRequest(req) ? next() : void res.status(403).type('text/plain').send('open mode answers only pages of this machine (localhost)')));
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.get('/images/:file', async (req, res, next) => {
    try {
      const m = /^([0-9a-f-]{36})\.png$/i.exec(req.params.file);
      const png = m ? await service.png(m[1].toLowerCase(), String(req.query.t ?? '')) : null;
      if (!png) return void res.status(404).type('text/plain').send('no such image');
      res.set('Cache-Control', 'public, max-age=31536000, immutable').type('image/png').send(Buffer.from(png));
    } catch (err) {
      next(err);
    }
  });
  // an interpolation as an animated PNG, there and back again
  app.get('/generations/:id/animation.png', async (req, res, next) => {
    try {
      const pngs = await service.pngsOf(req.params.id.toLowerCase(), String(req.query.t ?? ''));
      if (pngs.length < 2) return void res.status(404).type('text/plain').send('no such generation, or fewer than two images');
      const frames = pngs.map((p) => decodePng(Buffer.from(p)));
      const { width, height } = frames[0];
      const loop = [...frames, ...frames.slice(1, -1).reverse()].map((f) => f.rgb);
      res.set('Cache-Control', 'no-cache').type('image/png').send(encodeApng(loop, width, height, 150, { generation: req.params.id }));
    } catch (err) {
      next(err);
    }
  });
  if (opts.webDir) app.use(express.static(opts.webDir, { index: 'index.html', maxAge: '1h' }));
  app.use('/graphql', express.json({ limit: '1mb' }), expressMiddleware(apollo, {
    context: async ({ req }) => {
      try {
        return await contextFor(req.headers.authorization);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        throw new GraphQLError(err.message, { extensions: { code: err.code, http: { status: 401 } } });
      }
    },
  }));
  // body-parser's failures (bad JSON, too large) answer as GraphQL errors, not HTML pages
  app.use((err: { status?: number; type?: string; message?: string }, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(err);
    const status = err.status ?? 500;
    if (status >= 500) console.error('request failed:', err);
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR';
    const message = status === 413 ? 'request body is larger than 1 MB' : status < 500 ? `bad request: ${err.message ?? 'unreadable body'}` : 'internal error';
    res.status(status).json({ errors: [{ message, extensions: { code } }] });
  });

  await new Promise<void>((resolve) => http.listen(opts.port, opts.host ?? '0.0.0.0', resolve));
  const port = (http.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/graphql`,
    close: async () => {
      clearInterval(recheck);
      await unlisten();
      await apollo.stop();
    },
  };
}
