/**
 * Where a webhook may be sent. Only http(s) URLs without credentials, and (unless private addresses are
 * allowed: WEBHOOK_ALLOW_PRIVATE=1, on for `npm start`) only to public addresses: a request must not make
 * ganvas reach into its own network (cloud metadata at 169.254.169.254, databases, admin ports). The check
 * resolves the name once and the request then connects to exactly the addresses checked, so a name that
 * resolves elsewhere a second later (DNS rebinding) gains nothing.
 */
import type { LookupAddress } from 'node:dns';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { messageOf } from '../errors.ts';

export const MAX_URL_LENGTH = 2048;
/** A name that has not resolved by then is refused (its nameserver may never answer). */
const LOOKUP_MS = 5_000;
/**
 * Lookups in flight per process. getaddrinfo runs on libuv's pool (4 threads, shared with file reads, zlib and
 * image decoding), and one whose nameserver never answers holds its thread until the system resolver gives up,
 * long after LOOKUP_MS: without a bound, names that never resolve would take the whole pool.
 */
const MAX_LOOKUPS = 2;
let lookupsInFlight = 0;
const waitingLookups: (() => void)[] = [];

/** lookup(), at most MAX_LOOKUPS at once; one still waiting when `gaveUp` aborts is never started. */
function boundedLookup(host: string, gaveUp: AbortSignal): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    const start = () => {
      if (gaveUp.aborted) return void waitingLookups.shift()?.();
      lookupsInFlight++;
      lookup(host, { all: true })
        .then(resolve, reject)
        .finally(() => {
          lookupsInFlight--;
          waitingLookups.shift()?.();
        });
    };
    if (lookupsInFlight < MAX_LOOKUPS) start();
    else waitingLookups.push(start);
  });
}

/**
 * Addresses that are not the public internet (IANA special-purpose registries). BlockList matches an
 * IPv4-mapped IPv6 address (::ffff:127.0.0.1) against the IPv4 rules.
 */
const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
  ['2002::', 16], // 6to4: any IPv4 address inside
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT)
  ['fec0::', 10], // site-local (deprecated, still routed by some networks)
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

export const isPrivateAddress = (address: string): boolean =>
  PRIVATE.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** Why a URL is not a webhook target, in words for the person who gave it. */
export class TargetError extends Error {}

export interface Target {
  url: URL;
  /** What the host resolved to, checked: the request connects to these. */
  addresses: LookupAddress[];
}

/** The URL's syntax alone: what the API checks before anything else. */
export function parseTargetUrl(raw: string): URL {
  if (raw.length > MAX_URL_LENGTH) throw new TargetError(`is longer than ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetError('is not an absolute URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TargetError('must be an http or https URL');
  if (url.username || url.password) throw new TargetError('must not carry a user name or password');
  return url;
}

/** Parses and resolves a webhook URL; throws TargetError when it may not be sent to. */
export async function resolveTarget(raw: string, allowPrivate: boolean): Promise<Target> {
  const url = parseTargetUrl(raw);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: LookupAddress[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new AbortController();
    try {
      addresses = await Promise.race([
        boundedLookup(host, gaveUp.signal),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => {
              gaveUp.abort();
              reject(new Error('timeout'));
            }, LOOKUP_MS)),
        ),
      ]);
    } catch (err) {
      throw new TargetError(
        `host ${host} ${messageOf(err) === 'timeout' ? `did not resolve within ${LOOKUP_MS / 1000} s` : 'does not resolve'}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
  // which address is not said: the answer would map the server's own network for whoever asks
  if (!allowPrivate && addresses.some((a) => isPrivateAddress(a.address)))
    throw new TargetError('points to a private or loopback address; set WEBHOOK_ALLOW_PRIVATE=1 to allow them');
  return { url, addresses };
}
