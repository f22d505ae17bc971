import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Which peers may tell us the visitor's address and scheme (X-Forwarded-For, X-Forwarded-Proto): the proxy
 * only, never any container that can reach the API. TRUSTED_PROXIES lists addresses, CIDRs or host names:
 * a name (Compose's `proxy`, Swarm's `tasks.proxy`, a headless Service) is looked up again every few
 * seconds, since a replaced proxy gets a new address. Empty: nobody is trusted, the peer is the client.
 */
export interface TrustedProxies {
  /** Fastify's `trustProxy`: whether the peer at `address` speaks for the client. */
  trusts(address: string): boolean;
  /** Stops the periodic look-ups. */
  close(): void;
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** The entries of TRUSTED_PROXIES (comma- or space-separated); throws naming the first bad one. */
export function parseTrustedProxies(raw: string): string[] {
  const entries = raw.split(/[\s,]+/).filter(Boolean);
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address!);
    const max = family === 6 ? 128 : 32;
    const ok =
      extra === undefined &&
      (bits === undefined
        ? family !== 0 || NAME.test(entry)
        : family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (!ok) throw new Error(`TRUSTED_PROXIES must be addresses, CIDRs or host names, got "${entry}"`);
  }
  return entries;
}

/** An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d. */
const unmapped = (address: string): string => address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');

export function trustedProxies(entries: string[], refreshMs = 5_000): TrustedProxies {
  const ranges = new BlockList();
  const names: string[] = [];
  for (const entry of entries) {
    const [address, bits] = entry.split('/');
    const family = isIP(address!);
    if (family === 0) names.push(entry);
    else if (bits === undefined) ranges.addAddress(address!, family === 6 ? 'ipv6' : 'ipv4');
    else ranges.addSubnet(address!, Number(bits), family === 6 ? 'ipv6' : 'ipv4');
  }
  let resolved = new Set<string>();
  const refresh = async (): Promise<void> => {
    const found = await Promise.all(
      // A name that does not resolve yet (the proxy starts after us) is simply not trusted yet.
      names.map((name) => lookup(name, { all: true }).catch(() => [] as { address: string }[])),
    );
    resolved = new Set(found.flat().map((a) => unmapped(a.address)));
  };
  let timer: NodeJS.Timeout | undefined;
  if (names.length > 0) {
    void refresh();
    timer = setInterval(() => void refresh(), refreshMs);
    timer.unref();
  }
  return {
    trusts(address) {
      const peer = unmapped(address);
      const family = isIP(peer);
      if (family === 0) return false;
      return resolved.has(peer) || ranges.check(peer, family === 6 ? 'ipv6' : 'ipv4');
    },
    close: () => clearInterval(timer),
  };
}
