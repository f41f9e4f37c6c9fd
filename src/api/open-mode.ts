/**
 * Open mode (no API keys, `npm start` on localhost) trusts whoever reaches the port, so it must be only
 * this machine's own pages: any web page the user visits could otherwise open ws://127.0.0.1:4000 (browsers
 * send its Origin), and a DNS-rebound name reaches the HTTP API (browsers send its Host).
 */
import type { IncomingMessage } from 'node:http';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function hostname(value: string): string | null {
  try {
    return new URL(value.includes('://') ? value : `http://${value}`).hostname.toLowerCase();
  } catch {
    return null;
  }
}

/** True for a request addressed to a local host name and, where it has an Origin, sent by a local page. */
export function isLocalRequest(req: Pick<IncomingMessage, 'headers'>): boolean {
  const host = hostname(req.headers.host ?? '');
  if (!host || !LOCAL_HOSTS.has(host)) return false;
  const origin = req.headers.origin;
  return origin === undefined || LOCAL_HOSTS.has(hostname(origin) ?? '');
}
