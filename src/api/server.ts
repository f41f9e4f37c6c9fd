/**
 * The API server: GraphQL over HTTP (Apollo) and graphql-ws on the same path (GraphiQL for a browser),
 * PNGs at /images/<id>.png, /healthz, /readyz and /metrics. It reads and writes Postgres and hears
 * workers through LISTEN; it runs no model. Every request and WebSocket operation is logged with its id.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type IncomingMessage, createServer, type Server } from 'node:http';
import { join, relative, sep } from 'node:path';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import { GRAPHQL_TRANSPORT_WS_PROTOCOL } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { type WebSocket, WebSocketServer } from 'ws';
import { DEFAULT_WS_LIMITS, MAX_REQUEST_BYTES, type WsLimits } from '../config.ts';
import { Documents, isDocument } from './documents.ts';
import { sharedSubscribe } from './shared-executions.ts';
import { isLocalRequest } from './open-mode.ts';
import { OPS_PATHS } from '../ops/probes.ts';
import {
  CLOSE_TOO_MANY_SOCKETS,
  CLOSE_TRY_AGAIN,
  CLOSE_UNAUTHENTICATED,
  SocketsByKey,
  coalesceWrites,
} from './sockets.ts';
import type { Database } from '../db/database.ts';
import { isUnavailable } from '../db/unavailable.ts';
import { KeyOwners } from '../auth/key-owners.ts';
import { bridgeNotifications, bridgeOwnerChanges, createGenerationPubSub, versionOf } from '../events/bridge.ts';
import { QueueWatch } from '../events/queue-watch.ts';
import type { ModelCatalog } from '../generations/models.ts';
import type { Quotas } from '../generations/admission.ts';
import { GenerationService } from '../generations/service.ts';
import { bearer, validKeys } from '../auth/keys.ts';
import { UserError, unauthenticated } from '../errors.ts';
import { GraphQLError, getOperationAST } from 'graphql';
import { queryLimits } from '../schema/query-limits.ts';
import { buildGanvasSchema } from '../schema/build.ts';
import { type Context, type KeptPage, generationReads, keptBytes } from '../schema/context.ts';
import { OwnerPages } from '../generations/owner-pages.ts';
import { LiveReads } from '../schema/live.ts';
import { ByteCache } from '../images/byte-cache.ts';
import { MAX_UPLOAD_BYTES } from '../images/upload.ts';
import { PngPool } from '../images/png-pool.ts';
import { UNAVAILABLE_EXTENSIONS, UNAVAILABLE_MESSAGE, errorFormatter, refusedBeforeRunning } from './errors.ts';
import type { Logger } from '../ops/log.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { OpsResponse } from '../ops/probes.ts';

/** How long a fetched image may be reused without asking again: its bytes never change, a deletion ends it. */
const IMAGE_CACHE = 'private, max-age=86400, immutable';
/** Animated PNGs an API process keeps made (a 16-frame interpolation at 64x64: about 200 kB). */
const ANIMATION_CACHE_BYTES = 32 * 1024 * 1024;
/** Animated PNGs an API process makes at once (on its one animation thread). */
const ANIMATIONS_MAKING = 8;
/**
 * Animations asked for beyond those that wait their turn; one more is answered 503 (a browser does not fetch an `<img>`
 * again, so a gallery of animations is drawn by waiting, not by a Retry-After).
 */
const ANIMATIONS_WAITING = 64;

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

/** A client's X-Request-Id when it is a plausible id (so logs can join the caller's), else a new one. */
const requestId = (header: unknown): string =>
  typeof header === 'string' && /^[\w.:-]{1,100}$/.test(header) ? header : randomUUID();

export interface ApiOptions {
  db: Database;
  models: ModelCatalog;
  port: number;
  host?: string;
  webDir?: string | null;
  auth: AuthMode;
  quotas?: Quotas;
  ws?: WsLimits;
  /** Accept webhook URLs to private and loopback addresses (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivateWebhooks?: boolean;
  log: Logger;
  metrics: Metrics;
  /** /healthz, /readyz, /metrics. */
  endpoints: (path: string) => Promise<OpsResponse | null>;
}

export async function startApiServer(opts: ApiOptions): Promise<ApiServer> {
  const { log, metrics } = opts;
  const formatError = errorFormatter(log);
  const limits = opts.ws ?? DEFAULT_WS_LIMITS;
  const pubsub = createGenerationPubSub();
  const unlisten = await bridgeNotifications(opts.db, pubsub);
  const queue = new QueueWatch(opts.db.prisma, pubsub);
  const catalogKept = opts.models.keepFresh();
  const pages = new OwnerPages<KeptPage>({
    hearing: () => opts.db.listening(),
    sizeOf: keptBytes,
    answered: (from) => metrics.pagesAnswered.inc({ from }),
  });
  const unlistenOwners = await bridgeOwnerChanges(opts.db, pages);
  const service = new GenerationService(opts.db, opts.models, {
    quotas: opts.quotas,
    onCanceled: () => metrics.generationsFinished.inc({ status: 'CANCELED' }),
    onChanged: (owner) => pages.changed(owner),
    allowPrivateWebhooks: opts.allowPrivateWebhooks,
  });
  const schema = await buildGanvasSchema(pubsub);
  const documents = new Documents(schema);

  const socketReads = generationReads(service, queue);
  const live = new LiveReads(service, pubsub, socketReads.images);
  const sockets = new SocketsByKey(limits.connectionsPerKey);
  const closeRevoked = () => void sockets.closeRevoked((keys) => validKeys(opts.db.prisma, keys));
  const keys = new KeyOwners(opts.db);
  await keys.start(closeRevoked);

  /** The context of one HTTP request or WebSocket, or UNAUTHENTICATED. */
  const contextFor = async (
    authorization: unknown,
    transport: 'http' | 'ws',
  ): Promise<Context & { key: string | null }> => {
    const reads = transport === 'ws' ? socketReads : generationReads(service, queue);
    const shared = { service, models: opts.models, pubsub, live, pages, ...reads };
    if (opts.auth === 'open') return { ...shared, owner: null, key: null };
    const key = bearer(authorization);
    const owner = key ? await keys.of(key) : null;
    if (!owner || !key)
      throw unauthenticated(
        key
          ? 'the API key is not valid'
          : typeof authorization === 'string' && authorization.trim() !== ''
            ? 'send the API key as "Authorization: Bearer <key>" (the word Bearer, a space, then the key)'
            : 'send an API key: "Authorization: Bearer <key>" (npm run key:create)',
      );
    return { ...shared, owner, key };
  };

  const app = express();
  const http: Server = createServer(app);
  const localOnly = opts.auth === 'open';
  // not attached to `http` (noServer): attached, ws would pass on the server's errors, a port already taken among
  // them, to graphql-ws, which prints them as its own and leaves the start waiting (the listen below reports them)
  const wss = new WebSocketServer({
    noServer: true,
    path: '/graphql',
    maxPayload: limits.maxPayloadBytes,
    // refused as over HTTP (403): ws's own refusal is a 401, which reads as "send a key"
    verifyClient: (
      { req }: { req: IncomingMessage },
      done: (ok: boolean, status?: number, message?: string) => void,
    ) => (!localOnly || isLocalRequest(req) ? done(true) : done(false, 403, 'Forbidden')),
  });
  const recheck = setInterval(closeRevoked, limits.recheckMs);
  recheck.unref();
  type Extra = {
    socket: WebSocket;
    request: IncomingMessage;
    context?: Context & { key: string | null };
    log?: Logger;
    /** Operations of this socket by id: when each arrived, and once it executes, its name and type. */
    ops?: Map<string, { started: number; name?: string; type?: string }>;
  };
  const ws = useServer(
    {
      connectionInitWaitTimeout: limits.initTimeoutMs,
      // the key comes once, in connection_init; a connection without a valid one is refused, and so is
      // one more than its key may hold
      onConnect: async (ctx) => {
        const extra = ctx.extra as unknown as Extra;
        extra.log = log.child({ socket: requestId(extra.request.headers['x-request-id']) });
        extra.ops = new Map();
        try {
          extra.context = await contextFor(
            ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization,
            'ws',
          );
        } catch (err) {
          // closed before graphql-ws's own refusal (4403, which its client retries), which then changes nothing
          if (err instanceof UserError) {
            extra.log.info('websocket refused: no valid API key');
            extra.socket.close(CLOSE_UNAUTHENTICATED, `UNAUTHENTICATED: ${err.message}`);
          } else if (isUnavailable(err)) {
            // the key could not be checked: not the client's fault, it may try again (a close reason fits 123 bytes)
            extra.log.warn('websocket refused: the database cannot be reached to check its key');
            extra.socket.close(CLOSE_TRY_AGAIN, 'SERVICE_UNAVAILABLE: the database cannot be reached for a moment');
          } else {
            extra.log.error({ err }, 'websocket refused: checking its key failed');
            extra.socket.close(CLOSE_TRY_AGAIN, 'INTERNAL_SERVER_ERROR: try again later');
          }
          return false;
        }
        if (extra.socket.readyState !== extra.socket.OPEN) return false; // it went while its key was checked
        if (extra.context.key !== null && !sockets.add(extra.context.key, extra.socket)) {
          extra.log.info('websocket refused: its key holds too many sockets');
          extra.socket.close(
            CLOSE_TOO_MANY_SOCKETS,
            `RATE_LIMITED: an API key holds at most ${limits.connectionsPerKey} sockets at once`,
          );
          return false;
        }
        metrics.socketsOpen.inc();
        extra.socket.once('close', () => metrics.socketsOpen.dec());
        extra.log.info('websocket connected');
        return true;
      },
      onSubscribe: (ctx, id, payload) => {
        // graphql-ws has already entered this operation in ctx.subscriptions
        if (Object.keys(ctx.subscriptions).length > limits.subscriptionsPerConnection)
          return [
            new GraphQLError(`a connection holds at most ${limits.subscriptionsPerConnection} operations at once`, {
              extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 1 },
            }),
          ];
        // parsed and validated here, once per document's text (graphql-ws would parse and validate every operation,
        // and close the whole socket, 4500, on a document that does not parse: here it is this operation's error)
        const document = documents.check(payload.query);
        if (!isDocument(document)) return [...document];
        (ctx.extra as unknown as Extra).ops!.set(id, { started: performance.now() });
        return { schema, document, variableValues: payload.variables, operationName: payload.operationName };
      },
      // graphql-ws calls onComplete for every operation that got here (it executed), and only for those
      onOperation: (ctx, id, _payload, args) => {
        const op = (ctx.extra as unknown as Extra).ops!.get(id);
        const ast = getOperationAST(args.document, args.operationName)!;
        if (!op) return;
        Object.assign(op, { name: metrics.operationLabel(ast.name?.value), type: ast.operation });
        metrics.subscriptionsOpen.inc();
      },
      onComplete: (ctx, id) => {
        const extra = ctx.extra as unknown as Extra;
        coalesceWrites(extra.request.socket); // the complete message graphql-ws sends next
        const op = extra.ops?.get(id);
        extra.ops?.delete(id);
        if (!op?.type) return;
        metrics.subscriptionsOpen.dec();
        const seconds = (performance.now() - op.started) / 1000;
        metrics.operationSeconds.observe({ operation: op.name, type: op.type, transport: 'websocket' }, seconds);
        extra.log!.info({ op: id, operation: op.name, type: op.type, ms: Math.round(seconds * 1000) }, 'graphql');
      },
      onClose: (ctx, code) => (ctx.extra as unknown as Extra).log?.info({ code }, 'websocket closed'),
      // a subscription's per-object reads are the instance's (the subscribers of a change share its Generation object,
      // LiveReads); a query's or mutation's are its own, as over HTTP (a kept page's objects answer many requests)
      context: (ctx, _id, _payload, args) => {
        const context = (ctx.extra as unknown as Extra).context!;
        return getOperationAST(args.document, args.operationName)?.operation === 'subscription'
          ? context
          : { ...context, ...generationReads(service, queue) };
      },
      // one execution per change for the subscribers of one owner that run the same operation on the same generation
      // (the root: its id) at the same version of it; a socket's context differs from another's only by its owner
      subscribe: sharedSubscribe((args, root) =>
        JSON.stringify([
          (args.contextValue as Context).owner,
          root,
          versionOf(pubsub, String(root)),
          args.operationName ?? null,
          args.variableValues ?? null,
        ]),
      ),
      // the same codes over WebSocket as over HTTP; an operation refused before it executed is done
      onError: (ctx, id, _payload, errors) => {
        const ops = (ctx.extra as unknown as Extra).ops;
        if (!ops?.get(id)?.type) ops?.delete(id);
        return errors.map(refusedBeforeRunning).map((e) => formatError(e.toJSON(), e));
      },
      onNext: (ctx, _id, _payload, _args, result) => {
        coalesceWrites((ctx.extra as unknown as Extra).request.socket); // with the next messages of this tick
        return result.errors ? { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } : undefined;
      },
    },
    wss,
    // graphql-ws pings each socket this often and drops one that gives no pong within as long (its default: 12 s)
    limits.pingMs,
  );
  // graphql-ws's handshake accepts only its own subprotocol: a client that asks for another (the older
  // subscriptions-transport-ws protocol's, confusingly named graphql-ws) got none back and dropped the connection
  // itself (1006, "Server sent no subprotocol") before the 4406 that says why. Its first one is echoed instead, and
  // graphql-ws then closes the socket with 4406.
  wss.options.handleProtocols = (protocols: Set<string>) =>
    protocols.has(GRAPHQL_TRANSPORT_WS_PROTOCOL) ? GRAPHQL_TRANSPORT_WS_PROTOCOL : [...protocols][0];
  /**
   * Each GraphQL request over HTTP: its duration by operation, a log line joined to the HTTP one by the request id,
   * and `cache-control: no-store` on its answer. A subscription is refused there (Apollo would run it as a query,
   * once, without the event it resolves from): it belongs on the WebSocket.
   */
  const observe: ApolloServerPlugin<Context> = {
    async requestDidStart({ request }) {
      const started = performance.now();
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === 'subscription')
            throw new GraphQLError('subscriptions run over WebSocket (graphql-ws) at /graphql, not over HTTP', {
              extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
            });
        },
        async willSendResponse({ operationName, operation, errors, response }) {
          // answers are per key and live: no proxy may keep one (what the cache-control plugin said)
          response.http.headers.set('cache-control', 'no-store');
          const seconds = (performance.now() - started) / 1000;
          const name = metrics.operationLabel(operationName);
          const type = operation?.operation ?? 'invalid';
          metrics.operationSeconds.observe({ operation: name, type, transport: 'http' }, seconds);
          log.info(
            {
              req: request.http?.headers.get('x-request-id'),
              operation: name,
              type,
              ms: Math.round(seconds * 1000),
              errors: errors?.length ?? 0,
            },
            'graphql',
          );
        },
      };
    },
  };
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // the schema is the public contract: tools (GraphiQL, codegen, IDEs) read it by introspection, also under
    // NODE_ENV=production
    introspection: true,
    // services.ts handles SIGTERM (Apollo's own handler would stop only Apollo, then kill the process)
    stopOnTerminationSignals: false,
    validationRules: [queryLimits],
    // a query by GET (urql's default, Apollo Client's persisted hashes) is no cross-site request where it carries a
    // key: Authorization is not a header a browser sends without a preflight, which CORS refuses (no origin is
    // allowed); without one, Apollo's rule holds (open mode: a JSON content type or one of its own headers)
    csrfPrevention: { requestHeaders: ['x-apollo-operation-name', 'apollo-require-preflight', 'authorization'] },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer: http }),
      ApolloServerPluginLandingPageDisabled(), // browsers get ganvas's own GraphiQL (no CDN)
      // no cache hints are set (answers are per key and live): its per-field hook would cost every field
      ApolloServerPluginCacheControlDisabled(),
      observe,
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await ws.dispose();
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const id = requestId(req.headers['x-request-id']);
    req.headers['x-request-id'] = id; // read by the GraphQL plugin above
    res.setHeader('x-request-id', id);
    const started = performance.now();
    const path = req.path; // before routers strip their mount path
    res.once('finish', () => {
      const line = {
        req: id,
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
      };
      if (OPS_PATHS.includes(path)) log.debug(line, 'http');
      else log.info(line, 'http');
    });
    next();
  });
  if (localOnly)
    app.use((req, res, next) =>
      isLocalRequest(req)
        ? next()
        : void res.status(403).json({
            errors: [
              {
                message: 'open mode answers only pages of this machine (localhost): ask from it, or run with API keys',
                extensions: { code: 'FORBIDDEN' },
              },
            ],
          }),
    );
  app.get(OPS_PATHS, async (req, res, next) => {
    try {
      // express also routes /METRICS and /metrics/ here; only the exact paths are the endpoints (a proxy that keeps
      // /metrics private matches it exactly)
      const r = await opts.endpoints(req.path);
      if (!r) return next();
      res.status(r.status).type(r.type).send(r.body);
    } catch (err) {
      next(err);
    }
  });
  app.get('/images/:file', async (req, res, next) => {
    try {
      const m = /^(.+)\.png$/.exec(req.params.file);
      const png = m ? await service.png(m[1], String(req.query.t ?? '')) : null;
      if (!png) return void res.status(404).type('text/plain').send('no such image');
      // an image never changes, but it can be deleted: a day in the asker's own cache, none in shared ones
      res.set('Cache-Control', IMAGE_CACHE).type('image/png').send(Buffer.from(png));
    } catch (err) {
      next(err);
    }
  });
  // an interpolation as an animated PNG, there and back again. Its frames are decoded and encoded on a thread of
  // its own (20-120 ms each), not the event loop: many animations asked for at once (a cache too small for them)
  // hold up that thread, not every request; a finished generation's is made once and kept, requests that come
  // while one is being made wait for it rather than make it again, and beyond ANIMATIONS_MAKING at once the next
  // ANIMATIONS_WAITING wait their turn (one each time one is made) and any more is told to come back in a second
  const animator = new PngPool(1);
  const animations = new ByteCache(ANIMATION_CACHE_BYTES);
  const making = new Map<string, Promise<Uint8Array | null>>();
  const waiting: (() => void)[] = [];
  const noAnimation = (res: express.Response) =>
    res.status(404).type('text/plain').send('no such generation, or fewer than two images');
  app.get('/generations/:id/animation.png', async (req, res, next) => {
    try {
      const id = req.params.id.toLowerCase();
      const animation = await service.animation(id, String(req.query.t ?? ''));
      if (!animation || animation.images < 2) return void noAnimation(res);
      const key = `${id}:${animation.images}`;
      let made = animations.get(key) ?? making.get(key);
      if (!made && making.size >= ANIMATIONS_MAKING) {
        if (waiting.length >= ANIMATIONS_WAITING)
          return void res
            .status(503)
            .set('Retry-After', '1')
            .type('text/plain')
            .send('too many animations are being made now; ask again in a second');
        // woken as one is made (one whose read ended in the same turn may start too: the bound is a soft one); a
        // client gone meanwhile leaves the line, or passes its turn on
        const woken = await new Promise<boolean>((resolve) => {
          const wake = () => resolve(true);
          waiting.push(wake);
          res.once('close', () => {
            const at = waiting.indexOf(wake);
            if (at !== -1) waiting.splice(at, 1);
            resolve(false);
          });
        });
        if (!woken) return;
        made = animations.get(key) ?? making.get(key); // made by another meanwhile: the turn goes to the next
        if (made || res.destroyed) waiting.shift()?.();
        if (res.destroyed) return;
      }
      if (!made) {
        made = (async () => {
          const pngs = await animation.pngs();
          if (pngs.length < 2) return null; // deleted meanwhile
          const bytes = await animator.animate(pngs, 150, { generation: id });
          // a running one's next request has another image count: only a finished one's is worth keeping
          if (animation.finished && pngs.length === animation.images) animations.set(key, bytes);
          return bytes;
        })().finally(() => {
          making.delete(key);
          waiting.shift()?.();
        });
        making.set(key, made);
      }
      const apng = await made;
      if (!apng) return void noAnimation(res);
      // a finished generation's animation never changes (a deletion ends it, as an image's); a running one's grows
      res
        .set('Cache-Control', animation.finished ? IMAGE_CACHE : 'no-cache')
        .type('image/png')
        .send(Buffer.from(apng));
    } catch (err) {
      next(err);
    }
  });
  // GET /graphql without a query (nor a persisted query's hash): GraphiQL for a browser; for anything else (curl) how
  // to ask, not Apollo's CSRF refusal of a request without a content type
  const graphiql = opts.webDir ? join(opts.webDir, 'graphiql.html') : null;
  const hasGraphiql = graphiql !== null && existsSync(graphiql);
  app.get('/graphql', (req, res, next) => {
    if (req.query.query !== undefined || req.query.extensions !== undefined) return next();
    if (hasGraphiql && req.accepts(['application/json', 'text/html']) === 'text/html') return res.sendFile(graphiql);
    const message =
      'No query: POST a JSON body {"query": "..."} with content-type application/json to /graphql (README ' +
      '"Try it" has curl examples). Opened in a browser, this address is GraphiQL.';
    res.status(400).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
  });
  // the pages are read again on each visit (after a release they name other assets); the assets, named by their
  // content's hash, are kept for a year
  if (opts.webDir)
    app.use(
      express.static(opts.webDir, {
        index: 'index.html',
        setHeaders: (res, path) =>
          res.setHeader(
            'cache-control',
            path.endsWith('.html')
              ? 'no-cache'
              : relative(opts.webDir!, path).startsWith(`assets${sep}`) // Vite's build names them by their hash
                ? 'public, max-age=31536000, immutable'
                : 'public, max-age=3600',
          ),
      }),
    );
  // a CORS preflight: the methods, and no Access-Control-* header (ganvas is called from servers, README "In your
  // app"), so a browser reports the missing CORS header rather than Apollo's CSRF refusal of a body-less request
  app.options('/graphql', (_req, res) => void res.status(204).set('Allow', 'GET, HEAD, POST').end());
  app.use(
    '/graphql',
    express.json({ limit: MAX_REQUEST_BYTES }),
    expressMiddleware(apollo, {
      context: async ({ req }) => {
        try {
          return await contextFor(req.headers.authorization, 'http');
        } catch (err) {
          // the key could not be looked up: 503, retried by clients and gateways alike
          if (isUnavailable(err))
            throw new GraphQLError(UNAVAILABLE_MESSAGE, {
              extensions: {
                ...UNAVAILABLE_EXTENSIONS,
                http: { status: 503, headers: new Map([['retry-after', '1']]) },
              },
            });
          if (!(err instanceof UserError)) throw err;
          // RFC 6750: a 401 names the scheme it wants
          const headers = new Map([['www-authenticate', 'Bearer realm="ganvas"']]);
          throw new GraphQLError(err.message, { extensions: { code: err.code, http: { status: 401, headers } } });
        }
      },
    }),
  );
  // anything else: a short plain answer, not express's HTML page; a path that exists for GET is 405 to other methods
  app.use((req, res) => {
    const readable = /^\/(images\/[^/]+|generations\/[^/]+\/animation\.png|graphql)$/.test(req.path);
    if (readable && req.method !== 'GET' && req.method !== 'HEAD')
      return void res
        .status(405)
        .set('Allow', req.path === '/graphql' ? 'GET, HEAD, POST' : 'GET, HEAD')
        .type('text/plain')
        .send(`${req.method} is not allowed here`);
    res.status(404).type('text/plain').send(`no such path: ${req.method} ${req.path}`);
  });
  // body-parser's failures (bad JSON, too large) answer as GraphQL errors, not HTML pages
  app.use(
    (
      err: { status?: number; type?: string; message?: string },
      req: express.Request,
      res: express.Response,
      next: express.NextFunction,
    ) => {
      if (res.headersSent) return next(err);
      if (isUnavailable(err)) {
        // an image route could not reach the database: 503, to fetch again
        log.warn(`request failed: the database cannot be reached (${req.method} ${req.path})`);
        res.setHeader('retry-after', '1');
        return void res.status(503).json({
          errors: [{ message: UNAVAILABLE_MESSAGE, extensions: UNAVAILABLE_EXTENSIONS }],
        });
      }
      const status = err.status ?? 500;
      if (status >= 500) log.error({ err }, 'request failed');
      const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR';
      const message =
        status === 413
          ? `request body is larger than ${MAX_REQUEST_BYTES} bytes (a style image may be ${MAX_UPLOAD_BYTES} at most: ` +
            "scale it down, ganvas reads it at the model's size)"
          : status < 500
            ? `bad request: ${err.message ?? 'unreadable body'}`
            : 'internal error';
      res.status(status).json({ errors: [{ message, extensions: { code } }] });
    },
  );

  // ws answers an upgrade to another path 400, as attached
  http.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (s) => wss.emit('connection', s, req)),
  );
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject); // a port taken, an address not of this machine: the process says so and ends
    http.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const port = (http.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/graphql`,
    close: async () => {
      clearInterval(recheck);
      catalogKept();
      queue.close();
      live.close();
      await unlisten();
      await unlistenOwners();
      await keys.stop();
      await apollo.stop();
      await animator.stop();
    },
  };
}
