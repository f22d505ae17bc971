/**
 * The alert rules and the Prometheus config, checked by Prometheus's own promtool: the rules parse, every rule
 * has a runbook line, and monitoring/alerts.test.yml has a firing and a quiet case for every rule and passes.
 * Without promtool (Debian's `prometheus` package) this skips loudly; under CI=true it fails instead.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

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
  it('are the six the README documents', () => {
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
