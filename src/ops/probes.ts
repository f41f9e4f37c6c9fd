/**
 * The operations endpoints of every ganvas process: /healthz (the process answers), /readyz (each of its
 * dependencies answers: 503 names the ones that do not) and /metrics (Prometheus text). The API serves
 * them on its own port; a worker on WORKER_PORT.
 */
import { type Server, createServer } from 'node:http';
import type { Metrics } from './metrics.ts';

/** A readiness check: true when the dependency works; a throw or 2 s without an answer counts as false. */
export type Check = () => boolean | Promise<boolean>;

export interface OpsResponse {
  status: number;
  type: string;
  body: string;
}

export const CHECK_TIMEOUT_MS = 2000;

async function passes(check: Check): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export const OPS_PATHS = ['/healthz', '/readyz', '/metrics'];

/** Answers an operations path (null for any other). */
export function opsEndpoints(
  metrics: Metrics,
  checks: Record<string, Check>,
): (path: string) => Promise<OpsResponse | null> {
  return async (path) => {
    if (path === '/healthz') return { status: 200, type: 'application/json', body: JSON.stringify({ ok: true }) };
    if (path === '/metrics')
      return { status: 200, type: metrics.registry.contentType, body: await metrics.registry.metrics() };
    if (path !== '/readyz') return null;
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((name) => passes(checks[name])));
    const failing = names.filter((_, i) => !results[i]);
    return {
      status: failing.length ? 503 : 200,
      type: 'application/json',
      body: JSON.stringify({ ready: failing.length === 0, failing }),
    };
  };
}

/** A request target's path (`/metrics`, or one of `http://host/metrics`); '' for one that is no URL (`//%`). */
function pathOf(target = '/'): string {
  try {
    return new URL(target, 'http://ops').pathname;
  } catch {
    return ''; // thrown inside the request handler, it would end the process
  }
}

/** A worker's small HTTP server for the operations endpoints. */
export async function startOpsServer(
  endpoints: (path: string) => Promise<OpsResponse | null>,
  port: number,
  host: string,
): Promise<Server> {
  const server = createServer((req, res) => {
    endpoints(pathOf(req.url)).then(
      (r) => res.writeHead(r?.status ?? 404, { 'content-type': r?.type ?? 'text/plain' }).end(r?.body ?? 'not found'),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
