import envSchema from 'env-schema';
import type { LevelWithSilent } from 'pino';
import { Type, type Static } from 'typebox';
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
  /** How long the migrate command waits for a server still starting (MIGRATE_WAIT_SECONDS). */
  migrateWaitMs: number;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] satisfies LevelWithSilent[];

// Digits first, then the range: ajv's type coercion alone would also take " 80", "1e3" or "0x50".
const port = (fallback: number) =>
  Type.Unsafe<number>({
    allOf: [Type.String({ pattern: '^\\d+$' }), Type.Integer({ minimum: 1, maximum: 65535 })],
    default: fallback,
    description: 'a whole number from 1 to 65535',
  });

/** The variables, their defaults and what each takes; a `description` completes the error for a bad value. */
const Env = Type.Object({
  // 0.0.0.0 so the proxy can reach us across the Compose network; HOST narrows it, e.g. to 127.0.0.1.
  HOST: Type.String({ default: '0.0.0.0' }),
  PORT: port(5252),
  METRICS_PORT: port(9464),
  BUILD_VERSION: Type.String({ default: 'dev' }),
  BUILD_COMMIT: Type.String({ default: 'unknown' }),
  LOG_LEVEL: Type.Enum(LOG_LEVELS, { default: 'info', description: `one of ${LOG_LEVELS.join(', ')}` }),
  // parseTrustedProxies splits it on commas or spaces (env-schema's separator takes one string) and checks each.
  TRUSTED_PROXIES: Type.String({ default: '' }),
  MIGRATE_WAIT_SECONDS: Type.Unsafe<number>({
    allOf: [Type.String({ pattern: '^\\d+$' }), Type.Integer({ minimum: 0 })],
    default: 60,
    description: 'a whole number of seconds',
  }),
});

/** The variables of `Env`, typed and defaulted; a bad one throws one line naming it and its value. */
function readEnv(env: NodeJS.ProcessEnv): Static<typeof Env> {
  // An empty value counts as unset (`HOST=` in a Compose file keeps the default); an empty PORT is refused.
  const given = Object.fromEntries(Object.entries(env).filter(([name, value]) => value !== '' || name === 'PORT'));
  try {
    return envSchema<Static<typeof Env>>({ schema: Env, data: given, env: false });
  } catch (error) {
    // ajv's "env/PORT must match pattern ..." becomes "PORT must be a whole number from 1 to 65535, got ...".
    const name = (error as { errors?: { instancePath: string }[] }).errors?.[0]?.instancePath.slice(1) ?? '';
    const rule = (Env.properties as Record<string, { description?: string }>)[name]?.description;
    if (rule === undefined) throw error;
    throw new Error(`${name} must be ${rule}, got "${given[name]}"`, { cause: error });
  }
}

/** Reads and checks the environment; a bad value stops start-up with an error naming its variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const vars = readEnv(env);
  // A rule across two variables, which a schema of one variable each cannot state.
  if (vars.METRICS_PORT === vars.PORT) {
    throw new Error(`METRICS_PORT must differ from PORT, both are ${vars.PORT}`);
  }
  return {
    host: vars.HOST,
    port: vars.PORT,
    metricsPort: vars.METRICS_PORT,
    buildInfo: { version: vars.BUILD_VERSION, commit: vars.BUILD_COMMIT },
    logLevel: vars.LOG_LEVEL,
    // Code, not schema: the URL may come from a *_FILE secret, and a bad one is shown without its password.
    store: storeSelectionFromEnv(env),
    trustedProxies: parseTrustedProxies(vars.TRUSTED_PROXIES),
    migrateWaitMs: vars.MIGRATE_WAIT_SECONDS * 1000,
  };
}
