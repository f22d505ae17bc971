/**
 * Small readers over rendered objects: workloads and their pods, label selectors, and a NetworkPolicy
 * evaluator good enough to say whether one pod may open a connection to another, as an enforcing CNI would.
 */
import type { K8sObject } from './manifests.js';

export type Labels = Record<string, string>;
export interface Selector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

/** What a connection's end looks like to a NetworkPolicy: a pod, or an address outside the cluster. */
export type Peer =
  | { kind: 'pod'; name: string; namespace: string; namespaceLabels: Labels; labels: Labels; ports: ContainerPort[] }
  | { kind: 'external'; name: string };

/** Whether a label selector selects these labels; an empty selector selects everything. */
export function selects(selector: Selector | undefined, labels: Labels): boolean {
  if (!selector) return false;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value);
  const byExpression = (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) => {
    const value = labels[key];
    if (operator === 'In') return value !== undefined && values.includes(value);
    if (operator === 'NotIn') return value === undefined || !values.includes(value);
    if (operator === 'Exists') return value !== undefined;
    return value === undefined;
  });
  return byLabel && byExpression;
}

export const workloads = (objects: K8sObject[]): K8sObject[] =>
  objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind));

/** The workload's pod as a NetworkPolicy sees it. */
export function podPeer(workload: K8sObject, namespaces: K8sObject[]): Peer {
  const namespace = workload.metadata.namespace ?? 'default';
  const ns = namespaces.find((n) => n.metadata.name === namespace);
  return {
    kind: 'pod',
    name: workload.metadata.name,
    namespace,
    namespaceLabels: { ...ns?.metadata.labels, 'kubernetes.io/metadata.name': namespace },
    labels: workload.spec.template.metadata.labels,
    ports: (workload.spec.template.spec.containers as { ports?: ContainerPort[] }[]).flatMap((c) => c.ports ?? []),
  };
}

/** The cluster's DNS pods, as most distributions label them. */
export const clusterDns: Peer = {
  kind: 'pod',
  name: 'kube-dns',
  namespace: 'kube-system',
  namespaceLabels: { 'kubernetes.io/metadata.name': 'kube-system' },
  labels: { 'k8s-app': 'kube-dns' },
  ports: [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ],
};

interface PolicyPeer {
  podSelector?: Selector;
  namespaceSelector?: Selector;
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicyRule {
  from?: PolicyPeer[];
  to?: PolicyPeer[];
  ports?: { port?: number | string; protocol?: string; endPort?: number }[];
}

/** Whether one rule admits `other` (the far end) on `port`, which `owner` (the receiving pod) listens on. */
function admits(
  rule: PolicyRule,
  peers: PolicyPeer[] | undefined,
  policyNamespace: string,
  other: Peer,
  port: number,
  protocol: string,
  owner: Peer,
): boolean {
  const peerOk =
    !peers ||
    peers.length === 0 ||
    peers.some((peer) => {
      // ipBlock is for addresses outside the cluster; pod IPs are matched by selectors here.
      if (peer.ipBlock) return other.kind === 'external';
      if (other.kind !== 'pod') return false;
      const namespaceOk = peer.namespaceSelector
        ? selects(peer.namespaceSelector, other.namespaceLabels)
        : other.namespace === policyNamespace;
      return namespaceOk && selects(peer.podSelector ?? {}, other.labels);
    });
  const portOk =
    !rule.ports ||
    rule.ports.length === 0 ||
    rule.ports.some((p) => {
      if ((p.protocol ?? 'TCP') !== protocol) return false;
      if (p.port === undefined) return true;
      if (typeof p.port === 'number') return p.endPort ? port >= p.port && port <= p.endPort : p.port === port;
      // A named port means the receiving pod's port of that name.
      return owner.kind === 'pod' && owner.ports.some((cp) => cp.name === p.port && cp.containerPort === port);
    });
  return peerOk && portOk;
}

function policyTypes(policy: K8sObject): string[] {
  return policy.spec.policyTypes ?? (policy.spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
}

/** Whether `from` may open a connection to `to` on `port`: its egress and the target's ingress both allow it. */
export function connectionAllowed(
  policies: K8sObject[],
  from: Peer,
  to: Peer,
  port: number,
  protocol: 'TCP' | 'UDP' = 'TCP',
): boolean {
  const side = (pod: Peer, type: 'Ingress' | 'Egress'): boolean => {
    if (pod.kind !== 'pod') return true;
    const applying = policies.filter(
      (p) =>
        (p.metadata.namespace ?? 'default') === pod.namespace &&
        policyTypes(p).includes(type) &&
        selects(p.spec.podSelector, pod.labels),
    );
    // A pod no policy selects is not isolated in that direction.
    if (applying.length === 0) return true;
    return applying.some((p) =>
      ((type === 'Ingress' ? p.spec.ingress : p.spec.egress) ?? []).some((rule: PolicyRule) =>
        type === 'Ingress'
          ? admits(rule, rule.from, p.metadata.namespace ?? 'default', from, port, protocol, to)
          : admits(rule, rule.to, p.metadata.namespace ?? 'default', to, port, protocol, to),
      ),
    );
  };
  return side(from, 'Egress') && side(to, 'Ingress');
}
