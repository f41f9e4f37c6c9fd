/**
 * Open mode (no API keys, `npm start` on localhost) trusts whoever reaches the port, so it must be only
 * this machine's own pages: any web page the user visits could otherwise open ws://127.0.0.1:4000 (browsers
 * send its Origin), and a DNS-rebound name reaches the HTTP API (browsers send its Host).
 */
import type { IncomingMessage } from 'node:http';

/** localhost, ::1 and the IPv4 loopback network 127/8 (where HOST may bind open mode: services.ts isLoopback). */
const isLocalName = (host: string | null): boolean =>
  host === 'localhost' || host === '[::1]' || (host !== null && /^127(\.\d{1,3}){3}$/.test(host));

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
  if (!isLocalName(host)) return false;
  const origin = req.headers.origin;
  return origin === undefined || isLocalName(hostname(origin));
}
