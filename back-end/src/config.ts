/** Reads the listening address from the environment; a bad PORT stops start-up with a clear message. */
export function listenAddress(env: NodeJS.ProcessEnv = process.env): { host: string; port: number } {
  const raw = env.PORT ?? '5252';
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw new Error(`PORT must be a whole number from 1 to 65535, got "${raw}"`);
  }
  // 0.0.0.0 so the proxy can reach us across the Compose network; HOST narrows it, e.g. to 127.0.0.1.
  return { host: env.HOST ?? '0.0.0.0', port };
}
