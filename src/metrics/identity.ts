/**
 * Who an agent is on the wire: the OTLP resource of OpenTelemetry's semantic
 * conventions. Each agent of a fleet needs its own stable service.instance.id,
 * or a Collector's Prometheus exporter folds them all into one series (whose
 * counters then seem to reset at every export of another agent).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';

/** The namespace the semantic conventions give for UUID v5 service.instance.id values. */
const INSTANCE_ID_NAMESPACE = '4d63009a-8d0f-11ee-aad7-4c796ed8e320';

export interface AgentIdentity {
  /** The node this agent stands for: host.name (default: K8S_NODE_NAME from the downward API, else the host name). */
  node?: string;
  /** The network namespace traced, as given (--netns): part of the instance id, so two agents of one node differ. */
  netns?: string;
}

/** UUID v5 (RFC 9562) of `name` in the namespace `ns`. */
export function uuidV5(ns: string, name: string): string {
  const h = crypto.createHash('sha1').update(Buffer.from(ns.replace(/-/g, ''), 'hex')).update(name).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function machineId(): string {
  try {
    return fs.readFileSync('/etc/machine-id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** The node name an agent uses unless told: the downward API's, else the host name. */
export function defaultNode(env: NodeJS.ProcessEnv = process.env): string {
  return env.K8S_NODE_NAME || os.hostname();
}

/**
 * The resource attributes of an agent. service.instance.id is the same on every
 * restart of the same agent (machine, node and namespace), and different for
 * every other. k8s.* come from the downward API variables the DaemonSet sets.
 * OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME still win (the caller merges them last).
 */
export function agentResource(version: string, id: AgentIdentity = {}, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const node = id.node ?? defaultNode(env);
  const out: Record<string, string> = {
    'service.name': 'nettrace',
    'service.version': version,
    'service.instance.id': uuidV5(INSTANCE_ID_NAMESPACE, [machineId(), node, id.netns ?? ''].join('\0')),
    'host.name': node,
  };
  if (env.K8S_NODE_NAME) out['k8s.node.name'] = env.K8S_NODE_NAME;
  if (env.K8S_POD_NAME) out['k8s.pod.name'] = env.K8S_POD_NAME;
  if (env.K8S_NAMESPACE_NAME) out['k8s.namespace.name'] = env.K8S_NAMESPACE_NAME;
  if (id.netns !== undefined) out['nettrace.netns'] = id.netns;
  return out;
}
