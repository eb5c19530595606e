/**
 * What a cgroup v2 path says about who runs in it: the systemd unit, the
 * container runtime and container id, the Kubernetes pod and its QoS class.
 * Pure: it reads the names each runtime gives its cgroups, with systemd's
 * cgroup driver (`docker-ID.scope`, `kubepods-burstable-podUID.slice`) and
 * with the cgroupfs driver (`/docker/ID`, `/kubepods/burstable/podUID/ID`).
 */

export type Runtime = 'docker' | 'containerd' | 'crio' | 'podman';
export type QosClass = 'guaranteed' | 'burstable' | 'besteffort';

/** Who a cgroup belongs to. */
export interface Container {
  /** The cgroup's path under the cgroup v2 root, "/" for the root itself. */
  path: string;
  /** The container runtime when a container runs in it; null for a service, a scope or a plain cgroup. */
  runtime: Runtime | null;
  /** The container's id (64 hex digits) when a runtime names one. */
  id: string | null;
  /** The innermost systemd unit (`nginx.service`, `docker-ID.scope`, `session-2.scope`), if any. */
  unit: string | null;
  /** Kubernetes: the pod's UID and QoS class, from the kubepods hierarchy. */
  pod_uid: string | null;
  qos: QosClass | null;
  /** One short name for grouping and labels: the container id's first 12 digits, else the unit, else the path. */
  name: string;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** systemd-driver container scopes: runtime prefix, id, `.scope`. conmon's scopes hold the monitor, not the container. */
const SCOPE = /^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})\.scope$/;
const RUNTIME_OF: Record<string, Runtime> = { docker: 'docker', 'cri-containerd': 'containerd', crio: 'crio', libpod: 'podman' };
/** `kubepods-burstable-pod<uid, _ for ->.slice`, or `pod<uid>` with the cgroupfs driver. */
const POD_SLICE = /^kubepods(?:-(burstable|besteffort))?-pod([0-9a-f_]{36})\.slice$/;
const POD_DIR = /^pod([0-9a-f-]{36})$/;
const UNIT = /\.(service|scope)$/;

export function classifyCgroup(path: string): Container {
  const parts = path.split('/').filter((p) => p !== '');
  let runtime: Runtime | null = null;
  let id: string | null = null;
  let unit: string | null = null;
  let podUid: string | null = null;
  let qos: QosClass | null = null;
  let inKubepods = false;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const prev = parts[i - 1];
    if (UNIT.test(p)) unit = p;
    const scope = SCOPE.exec(p);
    if (scope) {
      runtime = RUNTIME_OF[scope[1]];
      id = scope[2];
      continue;
    }
    if (p === 'kubepods' || p === 'kubepods.slice') {
      inKubepods = true;
      qos = 'guaranteed'; // pods of neither named class sit directly under kubepods
      continue;
    }
    const slice = POD_SLICE.exec(p);
    if (slice) {
      inKubepods = true;
      qos = (slice[1] as QosClass | undefined) ?? 'guaranteed';
      podUid = slice[2].replace(/_/g, '-');
      continue;
    }
    if (inKubepods && podUid === null && (p === 'burstable' || p === 'besteffort')) {
      qos = p;
      continue;
    }
    const pod = inKubepods ? POD_DIR.exec(p) : null;
    if (pod) {
      podUid = pod[1];
      continue;
    }
    if (!HEX64.test(p)) continue;
    // the cgroupfs driver names the container's cgroup by its bare id, under its runtime's parent
    if (prev === 'docker') [runtime, id] = ['docker', p];
    else if (prev === 'libpod_parent' || prev?.startsWith('libpod-')) [runtime, id] = ['podman', p];
    else if (podUid !== null) [runtime, id] = [runtime ?? 'containerd', p];
  }
  const canonical = '/' + parts.join('/');
  const name = id !== null ? id.slice(0, 12) : (unit ?? canonical);
  return { path: canonical, runtime, id, unit, pod_uid: podUid, qos: inKubepods ? qos : null, name };
}

/** Whether `c` is the container `id` (its full id, or a prefix of at least 4 digits, as docker takes them). */
export function isContainer(c: Container, id: string): boolean {
  return c.id !== null && id.length >= 4 && c.id.startsWith(id.toLowerCase());
}

/** Whether `c` is in the systemd unit `unit` (`nginx` meaning `nginx.service`), directly or in a cgroup below it. */
export function inUnit(c: Container, unit: string): boolean {
  const want = UNIT.test(unit) || unit.endsWith('.slice') ? unit : `${unit}.service`;
  return c.path.split('/').includes(want);
}
