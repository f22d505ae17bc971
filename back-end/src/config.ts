import type { LevelWithSilent } from 'pino';
import type { BuildInfo } from './plugins/metrics.js';
import { storeSelectionFromEnv, type StoreSelection } from './contact-store.js';
import { parseTrustedProxies } from './trusted-proxies.js';

/** Everything the back-end takes from its environment; nothing else reads `process.env`. */
export interface Config {
  host: string;
  port: number;
  /** Where Prometheus scrapes /metrics: a port of its own, which the proxy never forwards to. */
  metricsPort: number;
  /** Named by the build-info gauge: the image's version and git commit (build arguments). */
  buildInfo: BuildInfo;
  logLevel: LevelWithSilent;
  /** Where contact messages are kept: PostgreSQL (DATABASE_URL or DATABASE_URL_FILE), else the JSON-lines file. */
  store: StoreSelection;
  /** Peers whose X-Forwarded-For and X-Forwarded-Proto are believed (TRUSTED_PROXIES): the proxy only. */
  trustedProxies: string[];
}

const LOG_LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function isLogLevel(value: string): value is LevelWithSilent {
  return LOG_LEVELS.includes(value);
}

function port(raw: string, name = 'PORT'): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) {
    throw new Error(`${name} must be a whole number from 1 to 65535, got "${raw}"`);
  }
  return value;
}

function logLevel(raw: string): LevelWithSilent {
  if (!isLogLevel(raw)) throw new Error(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`);
  return raw;
}

function metricsPort(raw: string, apiPort: number): number {
  const value = port(raw, 'METRICS_PORT');
  if (value === apiPort) throw new Error(`METRICS_PORT must differ from PORT, both are ${value}`);
  return value;
}

/** Reads and checks the environment; a bad value stops start-up with an error naming its variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const apiPort = port(env.PORT ?? '5252');
  return {
    // 0.0.0.0 so the proxy can reach us across the Compose network; HOST narrows it, e.g. to 127.0.0.1.
    host: env.HOST || '0.0.0.0',
    port: apiPort,
    metricsPort: metricsPort(env.METRICS_PORT || '9464', apiPort),
    buildInfo: { version: env.BUILD_VERSION || 'dev', commit: env.BUILD_COMMIT || 'unknown' },
    logLevel: logLevel(env.LOG_LEVEL || 'info'),
    // A bad DATABASE_URL throws one line naming the variable, never its password (stores/database-url.ts).
    store: storeSelectionFromEnv(env),
    trustedProxies: parseTrustedProxies(env.TRUSTED_PROXIES ?? ''),
  };
}
