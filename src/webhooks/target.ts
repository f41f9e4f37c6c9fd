/**
 * Where a webhook may be sent. Only http(s) URLs without credentials, and (unless private addresses are
 * allowed: WEBHOOK_ALLOW_PRIVATE=1, on for `npm start`) only to public addresses: a request must not make
 * ganvas reach into its own network (cloud metadata at 169.254.169.254, databases, admin ports). The check
 * resolves the name once and the request then connects to exactly the addresses checked, so a name that
 * resolves elsewhere a second later (DNS rebinding) gains nothing.
 */
import type { LookupAddress } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { BlockList, isIP } from 'node:net';
import { messageOf } from '../errors.ts';

export const MAX_URL_LENGTH = 2048;
/** A name that has not resolved by then is refused (its nameserver may never answer). */
const LOOKUP_MS = 5_000;
/** The DNS answers that say a name has no address (the others: a timeout, a server that failed or refused). */
const ABSENT = new Set(['ENOTFOUND', 'ENODATA']);
const LOCALHOST: LookupAddress[] = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 },
];

/** What getaddrinfo reads from /etc/resolv.conf besides nameservers: the search list and ndots. */
export interface SearchConfig {
  search: string[];
  ndots: number;
}

export function parseResolvConf(text: string): SearchConfig {
  const conf: SearchConfig = { search: [], ndots: 1 };
  for (const line of text.split('\n')) {
    const [key, ...values] = line.trim().split(/\s+/);
    if (key === 'search' || key === 'domain') conf.search = values;
    if (key === 'options')
      for (const o of values) {
        const m = /^ndots:(\d+)$/.exec(o);
        if (m) conf.ndots = Number(m[1]);
      }
  }
  return conf;
}

/**
 * The names getaddrinfo would try for `host`, in its order: with fewer dots than ndots the search list's first
 * (Kubernetes: "receiver" is receiver.<namespace>.svc.cluster.local), else the name first; a trailing dot: the name.
 */
export function candidateNames(host: string, conf: SearchConfig): string[] {
  if (host.endsWith('.')) return [host.slice(0, -1)];
  const searched = conf.search.map((domain) => `${host}.${domain}`);
  return host.split('.').length - 1 >= conf.ndots ? [host, ...searched] : [...searched, host];
}

/** /etc/hosts as getaddrinfo reads it: each name (lower case) and its addresses, in file order. */
export function parseHosts(text: string): Map<string, LookupAddress[]> {
  const hosts = new Map<string, LookupAddress[]>();
  for (const line of text.split('\n')) {
    const [address, ...names] = line.replace(/#.*/, '').trim().split(/\s+/);
    const family = isIP(address ?? '');
    if (!family) continue;
    for (const name of names.map((n) => n.toLowerCase()))
      hosts.set(name, [...(hosts.get(name) ?? []), { address, family }]);
  }
  return hosts;
}

let searchConfig: Promise<SearchConfig> | null = null;
let hostsFile: Promise<Map<string, LookupAddress[]>> | null = null;

/**
 * A host name's addresses, from DNS queries (c-ares, on the event loop), not from getaddrinfo: that runs on
 * libuv's pool (4 threads, shared with file reads, zlib and image decoding) and holds its thread while a
 * nameserver never answers, so names that never resolve could take the pool from every key. These queries are
 * cancelled at the deadline. /etc/hosts comes first (read once), then the search list as getaddrinfo applies it
 * (candidateNames); `localhost` and `*.localhost` are loopback even where /etc/hosts does not say so.
 */
async function lookupAll(host: string): Promise<LookupAddress[]> {
  const bare = host.toLowerCase().replace(/\.$/, '');
  hostsFile ??= readFile('/etc/hosts', 'utf8').then(parseHosts, () => new Map());
  const listed = (await hostsFile).get(bare);
  if (listed) return listed;
  if (bare === 'localhost' || bare.endsWith('.localhost')) return LOCALHOST;
  searchConfig ??= readFile('/etc/resolv.conf', 'utf8').then(parseResolvConf, () => ({ search: [], ndots: 1 }));
  const names = candidateNames(host, await searchConfig);
  const resolver = new Resolver({ timeout: 2_000, tries: 2 });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), LOOKUP_MS)),
  );
  try {
    let failure: 'timeout' | 'failed' | undefined;
    for (const name of names) {
      const [v4, v6] = await Promise.race([
        Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]),
        deadline,
      ]);
      const addresses = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ];
      if (addresses.length > 0) return addresses;
      // a name is known not to exist only where each answer said so; a timeout or a server's failure says nothing
      for (const r of [v4, v6]) {
        const code = r.status === 'rejected' ? ((r.reason as { code?: string }).code ?? '') : 'ENODATA';
        if (code === 'ETIMEOUT') failure = 'timeout';
        else if (!ABSENT.has(code)) failure ??= 'failed';
      }
    }
    throw new Error(failure ?? 'not found');
  } finally {
    clearTimeout(timer);
    resolver.cancel();
  }
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
export class TargetError extends Error {
  /** True where the URL may do once the cause passes (its name's lookup timed out or failed on the server's side). */
  constructor(
    message: string,
    readonly transient = false,
  ) {
    super(message);
  }
}

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
  else
    try {
      addresses = await lookupAll(host);
    } catch (err) {
      const why = messageOf(err);
      if (why === 'not found') throw new TargetError(`host ${host} does not resolve`);
      throw new TargetError(
        `host ${host} ${why === 'timeout' ? `did not resolve within ${LOOKUP_MS / 1000} s` : 'could not be looked up'} (DNS)`,
        true,
      );
    }
  // which address is not said: the answer would map the server's own network for whoever asks
  if (!allowPrivate && addresses.some((a) => isPrivateAddress(a.address)))
    throw new TargetError('points to a private or loopback address; set WEBHOOK_ALLOW_PRIVATE=1 to allow them');
  return { url, addresses };
}
