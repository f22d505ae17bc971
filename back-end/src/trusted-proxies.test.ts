import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { parseTrustedProxies, trustedProxies } from './trusted-proxies.js';

/** An app with a route that shows what Fastify made of the forwarded headers. */
async function appTrusting(entries: string[]): Promise<FastifyInstance> {
  const app = await buildApp({ trustedProxies: entries });
  app.get('/whoami', async (request) => ({ ip: request.ip, protocol: request.protocol }));
  return app;
}

const forwarded = { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' };
let app: FastifyInstance | undefined;
afterEach(() => app?.close());

describe('TRUSTED_PROXIES: only the proxy speaks for the client', () => {
  it('believes X-Forwarded-For and X-Forwarded-Proto from a trusted peer', async () => {
    app = await appTrusting(['10.1.0.0/16']);
    const res = await app.inject({ url: '/whoami', remoteAddress: '10.1.2.3', headers: forwarded });
    expect(res.json()).toEqual({ ip: '203.0.113.9', protocol: 'https' });
  });

  it('ignores them from any other peer: it is its own client, over plain HTTP', async () => {
    app = await appTrusting(['10.1.0.0/16']);
    const res = await app.inject({ url: '/whoami', remoteAddress: '10.2.0.7', headers: forwarded });
    expect(res.json()).toEqual({ ip: '10.2.0.7', protocol: 'http' });
  });

  it('trusts nobody by default', async () => {
    app = await buildApp();
    app.get('/whoami', async (request) => ({ ip: request.ip, protocol: request.protocol }));
    const res = await app.inject({ url: '/whoami', remoteAddress: '127.0.0.1', headers: forwarded });
    expect(res.json()).toEqual({ ip: '127.0.0.1', protocol: 'http' });
    expect(loadConfig({}).trustedProxies).toEqual([]);
  });

  it('follows a host name to its addresses, as Compose names the proxy', async () => {
    const proxies = trustedProxies(['localhost'], 50);
    try {
      await expect.poll(() => proxies.trusts('127.0.0.1')).toBe(true);
      expect(proxies.trusts('::ffff:127.0.0.1')).toBe(true);
      expect(proxies.trusts('10.0.0.1')).toBe(false);
    } finally {
      proxies.close();
    }
  });

  it('takes addresses, CIDRs and names, comma- or space-separated, and refuses anything else', () => {
    expect(parseTrustedProxies('10.0.0.0/8, 192.0.2.1 fd00::/8 proxy tasks.proxy')).toEqual([
      '10.0.0.0/8',
      '192.0.2.1',
      'fd00::/8',
      'proxy',
      'tasks.proxy',
    ]);
    for (const bad of ['10.0.0.0/33', '10.0.0.0/8/1', 'fd00::/129', 'pro xy!', 'a_b', '-proxy'])
      expect(() => loadConfig({ TRUSTED_PROXIES: bad }), bad).toThrow(/TRUSTED_PROXIES/);
  });
});
