import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { DEFAULT_CONTACT_STORE_PATH } from './contact-store.js';

describe('loadConfig', () => {
  it('listens on 0.0.0.0:5252, logs at info and stores messages under the cwd by default', () => {
    expect(loadConfig({})).toEqual({
      host: '0.0.0.0',
      port: 5252,
      metricsPort: 9464,
      buildInfo: { version: 'dev', commit: 'unknown' },
      logLevel: 'info',
      store: { path: DEFAULT_CONTACT_STORE_PATH },
      trustedProxies: [],
      migrateWaitMs: 60_000,
    });
  });

  it('takes every setting from the environment', () => {
    const env = {
      ...{ PORT: '8081', HOST: '127.0.0.1', LOG_LEVEL: 'debug', CONTACT_STORE_PATH: '/data/messages.jsonl' },
      ...{ METRICS_PORT: '9100', BUILD_VERSION: '1.2.3', BUILD_COMMIT: 'abc1234', TRUSTED_PROXIES: 'proxy' },
      MIGRATE_WAIT_SECONDS: '5',
    };
    expect(loadConfig(env)).toEqual({
      host: '127.0.0.1',
      port: 8081,
      metricsPort: 9100,
      buildInfo: { version: '1.2.3', commit: 'abc1234' },
      logLevel: 'debug',
      store: { path: '/data/messages.jsonl' },
      trustedProxies: ['proxy'],
      migrateWaitMs: 5_000,
    });
  });

  it('keeps messages in PostgreSQL when DATABASE_URL names a database', () => {
    const url = 'postgresql://softy:pw@db:5432/softy_pinko?sslmode=require';
    expect(loadConfig({ DATABASE_URL: url, CONTACT_STORE_PATH: '/data/m.jsonl' }).store).toEqual({ databaseUrl: url });
  });

  it('refuses a bad DATABASE_URL in one line that names it and hides the password', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://softy:hunter2@db:5432' })).toThrow(
      /^DATABASE_URL names no database, got "postgresql:\/\/softy:\*\*\*@db:5432"/,
    );
  });

  it('treats an empty HOST, LOG_LEVEL or CONTACT_STORE_PATH as unset', () => {
    expect(loadConfig({ HOST: '', LOG_LEVEL: '', CONTACT_STORE_PATH: '' })).toEqual(loadConfig({}));
  });

  it.each(['', 'abc', '0', '70000', '80.5', '-1'])('refuses PORT=%j', (port) => {
    expect(() => loadConfig({ PORT: port })).toThrow(/^PORT must be a whole number from 1 to 65535/);
  });

  it.each(['', 'abc', '0', '70000'])('refuses METRICS_PORT=%j unless empty (the default then)', (port) => {
    if (port === '') expect(loadConfig({ METRICS_PORT: port }).metricsPort).toBe(9464);
    else
      expect(() => loadConfig({ METRICS_PORT: port })).toThrow(/^METRICS_PORT must be a whole number from 1 to 65535/);
  });

  it.each(['abc', '-1', '1.5'])('refuses MIGRATE_WAIT_SECONDS=%j', (seconds) => {
    expect(() => loadConfig({ MIGRATE_WAIT_SECONDS: seconds })).toThrow(
      `MIGRATE_WAIT_SECONDS must be a whole number of seconds, got "${seconds}"`,
    );
  });

  it('refuses a METRICS_PORT equal to PORT: /metrics must never share the API port', () => {
    expect(() => loadConfig({ PORT: '9464' })).toThrow('METRICS_PORT must differ from PORT, both are 9464');
  });

  it.each(['loud', 'INFO', 'warning'])('refuses LOG_LEVEL=%j, listing the levels it takes', (level) => {
    expect(() => loadConfig({ LOG_LEVEL: level })).toThrow(
      `LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "${level}"`,
    );
  });
});
