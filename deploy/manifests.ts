/**
 * The Kubernetes manifests as the cluster would receive them: each overlay rendered by `kubectl kustomize`,
 * checked against the Kubernetes and Gateway API schemas (kubernetes-models), and against their TypeScript
 * declarations for fields the schemas do not know (their validate() lets a misspelled field through).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

export const deployDir = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const overlays = ['production', 'dev'] as const;
export type Overlay = (typeof overlays)[number];

/** A rendered object, loosely typed: the tests read it as the API server would, field by field. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered YAML, shapes vary by kind
  spec?: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  data?: any;
}

/** kubectl named by KUBECTL (and then only that one), else the machine image's /usr/bin/kubectl or PATH's. */
export async function findKubectl(): Promise<string | undefined> {
  const candidates = process.env.KUBECTL ? [process.env.KUBECTL] : ['/usr/bin/kubectl', 'kubectl'];
  for (const candidate of candidates) {
    if (candidate.includes('/') && !existsSync(candidate)) continue;
    try {
      await execFileAsync(candidate, ['version', '--client'], { timeout: 30_000 });
      return candidate;
    } catch {
      // Not this one: try the next.
    }
  }
  return undefined;
}

/** The line of the production overlay an operator must replace, and what the checks put there instead. */
export const operatorPlaceholder = /^(\s*- )['"]TRUSTED_PROXIES must be set:.*['"]$/m;
export const exampleTrustedProxies = '192.0.2.0/24';

/** `kubectl kustomize` of a folder under deploy/kubernetes, as is: the production overlay refuses to render. */
export async function renderAsIs(kubectl: string, dir: string, root = `${deployDir}kubernetes`): Promise<string> {
  const { stdout } = await execFileAsync(kubectl, ['kustomize', `${root}/${dir}`], {
    timeout: 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * `kubectl kustomize` of a folder under deploy/kubernetes, parsed into objects, with the settings only an operator
 * knows filled in as an operator would (a copy, with exampleTrustedProxies in place of the placeholder).
 */
export async function render(kubectl: string, dir: string): Promise<K8sObject[]> {
  // The dev overlay's Secret is made from this checkout's own random secrets, as its README says.
  const secrets = `${deployDir}kubernetes/${dir}/secrets`;
  if (dir === 'overlays/dev' && !existsSync(`${secrets}/database-url`)) {
    await execFileAsync('bash', [`${repoRoot}scripts/db-secrets.sh`, secrets], { timeout: 60_000 });
  }
  const copy = mkdtempSync(`${tmpdir()}/softy-pinko-kubernetes-`);
  let stdout: string;
  try {
    cpSync(`${deployDir}kubernetes`, copy, { recursive: true });
    const kustomization = `${copy}/${dir}/kustomization.yaml`;
    writeFileSync(
      kustomization,
      readFileSync(kustomization, 'utf8').replace(operatorPlaceholder, `$1TRUSTED_PROXIES=${exampleTrustedProxies}`),
    );
    stdout = await renderAsIs(kubectl, dir, copy);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  return parseAllDocuments(stdout).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const object = doc.toJS() as K8sObject;
    // kustomize wraps a generated Secret's base64 at 70 characters; the API server's decoder skips the
    // newlines (Go's base64 does), the models' "byte" format does not, so they are dropped as the server would.
    if (object.kind === 'Secret' && object.data) {
      for (const key of Object.keys(object.data)) object.data[key] = String(object.data[key]).replace(/[\r\n]/g, '');
    }
    return object;
  });
}

/** Where kubernetes-models (or its Gateway API sibling) declares a kind: `kubernetes-models/apps/v1/Deployment`. */
function modelModule(object: Pick<K8sObject, 'apiVersion' | 'kind'>): string {
  const pkg = object.apiVersion.startsWith('gateway.networking.k8s.io/')
    ? '@kubernetes-models/gateway-api'
    : object.apiVersion.startsWith('monitoring.coreos.com/')
      ? '@kubernetes-models/prometheus-operator'
      : 'kubernetes-models';
  return `${pkg}/${object.apiVersion}/${object.kind}`;
}

/** The schema's verdict: undefined when valid, otherwise its message. Throws for a kind it does not know. */
export function schemaErrors(object: K8sObject): string | undefined {
  const model = (require(modelModule(object)) as Record<string, new (data: unknown) => { validate(): void }>)[
    object.kind
  ];
  if (!model) throw new Error(`no model for ${object.apiVersion} ${object.kind}`);
  try {
    new model(object).validate();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * A checker for fields that an object's kind does not declare (e.g. `spec.template.spec.contaners`), built from
 * the TypeScript interfaces kubernetes-models ships for each kind (`IDeployment`). One program for all kinds given.
 */
export function unknownFieldChecker(kinds: Pick<K8sObject, 'apiVersion' | 'kind'>[]): (object: K8sObject) => string[] {
  const files = new Map(kinds.map((k) => [modelModule(k), require.resolve(modelModule(k)).replace(/\.js$/, '.d.ts')]));
  const program = ts.createProgram({ rootNames: [...files.values()], options: { noEmit: true, types: [] } });
  const checker = program.getTypeChecker();

  const declaredType = (object: Pick<K8sObject, 'apiVersion' | 'kind'>): ts.Type => {
    const file = files.get(modelModule(object));
    const source = file && program.getSourceFile(file);
    const module = source && checker.getSymbolAtLocation(source);
    const symbol = module && checker.getExportsOfModule(module).find((s) => s.name === `I${object.kind}`);
    if (!symbol) throw new Error(`no declaration I${object.kind} for ${object.apiVersion}`);
    return checker.getDeclaredTypeOfSymbol(symbol);
  };

  const walk = (value: unknown, type: ts.Type, path: string, found: string[]): void => {
    if (value === null || typeof value !== 'object') return;
    const nonNull = checker.getNonNullableType(type);
    // Free-form fields (none in the kinds used here) would be `any`: nothing to check below them.
    if (nonNull.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
    const members = nonNull.isUnion() ? nonNull.types : [nonNull];
    if (Array.isArray(value)) {
      const arrayType = members.find((m) => checker.isArrayType(m)) as ts.TypeReference | undefined;
      const element = arrayType && checker.getTypeArguments(arrayType)[0];
      if (element) value.forEach((item, i) => walk(item, element, `${path}[${i}]`, found));
      return;
    }
    const objectTypes = members.filter((m) => m.flags & ts.TypeFlags.Object && !checker.isArrayType(m));
    for (const [key, child] of Object.entries(value)) {
      const childPath = path ? `${path}.${key}` : key;
      let childType: ts.Type | undefined;
      for (const candidate of objectTypes) {
        const property = checker.getPropertyOfType(candidate, key);
        // A map such as `labels` declares no properties, only a string index.
        childType = property
          ? checker.getTypeOfSymbol(property)
          : checker.getIndexInfoOfType(candidate, ts.IndexKind.String)?.type;
        if (childType) break;
      }
      if (childType) walk(child, childType, childPath, found);
      else found.push(childPath);
    }
  };

  return (object) => {
    const found: string[] = [];
    walk(object, declaredType(object), '', found);
    return found;
  };
}
