/**
 * The alert rules for the Prometheus Operator: monitoring/alerts.yml, the one source Compose's Prometheus
 * and promtool's tests read, wrapped in a PrometheusRule. `npm run manifests:rules` writes it into the
 * prometheus-operator component; kubernetes.test.ts fails when the file and its source differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { deployDir, repoRoot } from './manifests.js';

export const alertsFile = `${repoRoot}monitoring/alerts.yml`;
export const prometheusRuleFile = `${deployDir}kubernetes/components/prometheus-operator/prometheus-rule.yaml`;

/** The PrometheusRule's YAML for the rule file's text. */
export function prometheusRule(alerts: string): string {
  const { groups } = parse(alerts) as { groups: unknown[] };
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'softy-pinko',
      labels: { 'app.kubernetes.io/name': 'softy-pinko', 'app.kubernetes.io/component': 'monitoring' },
    },
    spec: { groups },
  };
  return (
    '# Generated from monitoring/alerts.yml by `npm run manifests:rules`: edit that file, then run it again.\n' +
    stringify(rule, { lineWidth: 0 })
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(prometheusRuleFile, prometheusRule(readFileSync(alertsFile, 'utf8')));
  console.log(`wrote ${prometheusRuleFile}`);
}
