/**
 * The alert rules and the Prometheus config, checked by Prometheus's own promtool: the rules parse, every rule
 * has a runbook line, and monitoring/alerts.test.yml has a firing and a quiet case for every rule and passes.
 * The dashboard's queries parse too, and prometheus.yml is a valid config.
 * Without promtool (Debian's `prometheus` package) this skips loudly; under CI=true it fails instead.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

const execFileAsync = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

interface Rule {
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}
interface RuleTest {
  alertname: string;
  exp_alerts?: unknown[];
}

/** promtool's combined output and whether it succeeded; a missing binary is reported as such. */
async function promtool(...args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(PROMTOOL, args, { cwd: here, timeout: 60_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: string; stdout?: string; stderr?: string; message: string };
    if (failed.code === 'ENOENT') return { ok: false, output: 'ENOENT' };
    return { ok: false, output: `${failed.stdout ?? ''}${failed.stderr ?? failed.message}` };
  }
}

const missing = (await promtool('--version')).output === 'ENOENT';
if (missing) {
  const reason = `${PROMTOOL} is not installed (Debian package: prometheus)`;
  if (process.env.CI === 'true') throw new Error(`The alert rules cannot be checked under CI=true: ${reason}`);
  console.warn(`\n${'!'.repeat(72)}\n!! SKIPPING the promtool checks: ${reason}.\n${'!'.repeat(72)}\n`);
}

const rules = (parse(readFileSync(`${here}alerts.yml`, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (group) => group.rules,
);
const ruleTests = (
  parse(readFileSync(`${here}alerts.test.yml`, 'utf8')) as { tests: { alert_rule_test: RuleTest[] }[] }
).tests.flatMap((test) => test.alert_rule_test);

describe('the alert rules', () => {
  it('are the six docs/monitoring.md documents', () => {
    expect(rules.map((rule) => rule.alert).sort()).toEqual([
      'ApiHelloSlowP99',
      'ApiHighErrorRatio',
      'ContactStoreFailures',
      'EventLoopLagHigh',
      'NoBackEndUp',
      'ProxyDown',
    ]);
  });

  it.each(rules.map((rule) => [rule.alert, rule] as const))('%s has a summary and a runbook line', (_, rule) => {
    expect(rule.annotations?.summary).toMatch(/\w/);
    expect(rule.annotations?.runbook).toMatch(/\w/);
  });

  it.each(rules.map((rule) => [rule.alert] as const))('%s is tested firing and tested quiet', (alert) => {
    const cases = ruleTests.filter((test) => test.alertname === alert);
    expect(
      cases.some((test) => (test.exp_alerts ?? []).length > 0),
      'a case where it fires',
    ).toBe(true);
    expect(
      cases.some((test) => (test.exp_alerts ?? []).length === 0),
      'a case where it stays quiet',
    ).toBe(true);
  });

  it.skipIf(missing)('pass promtool check rules', async () => {
    const { ok, output } = await promtool('check', 'rules', 'alerts.yml');
    expect(output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(ok, output).toBe(true);
  });

  it.skipIf(missing)('pass promtool test rules (monitoring/alerts.test.yml)', async () => {
    const { ok, output } = await promtool('test', 'rules', 'alerts.test.yml');
    expect(ok, output).toBe(true);
    expect(output).toContain('SUCCESS');
  });
});

describe('prometheus.yml', () => {
  it.skipIf(missing)('passes promtool check config, rule files included', async () => {
    const { ok, output } = await promtool('check', 'config', 'prometheus.yml');
    expect(ok, output).toBe(true);
    expect(output).toContain('SUCCESS: prometheus.yml is valid');
  });
});

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; w: number };
  datasource?: { uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
}

describe('monitoring/dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(`${here}dashboard.json`, 'utf8')) as {
    __inputs: { name: string; pluginId: string }[];
    panels: Panel[];
  };
  const graphs = dashboard.panels.filter((panel) => panel.type !== 'row');

  it('asks for its Prometheus data source on import, and every query uses it', () => {
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' })]);
    for (const panel of graphs) {
      expect(panel.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
      for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe('${DS_PROMETHEUS}');
    }
  });

  it('shows rate, errors and duration for the page and for the API, on a 24-column grid', () => {
    const titles = graphs.map((panel) => panel.title);
    for (const what of ['API rate', 'API errors', 'API duration', 'Page rate', 'Page errors', 'Page duration']) {
      expect(
        titles.some((title) => title.startsWith(what)),
        what,
      ).toBe(true);
    }
    expect(new Set(dashboard.panels.map((panel) => panel.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) expect(panel.gridPos.x + panel.gridPos.w).toBeLessThanOrEqual(24);
  });

  // promtool has no bare PromQL parser, but check rules parses every recording rule's expression.
  it.skipIf(missing)('has queries that Prometheus parses (checked as recording rules)', async () => {
    const exprs = graphs.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr));
    expect(exprs.length).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
    try {
      const rules = exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr }));
      writeFileSync(join(dir, 'rules.yml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
      const { ok, output } = await promtool('check', 'rules', join(dir, 'rules.yml'));
      expect(ok, output).toBe(true);
      expect(output).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
