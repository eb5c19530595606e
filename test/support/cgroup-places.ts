/** Where each container runtime and systemd put a container, pod or service in the cgroup tree: the paths the container tests make and classify. */

/** A container id: the digit `c` 64 times. */
export const hex = (c: string): string => c.repeat(64);
export const POD = '1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d';

/** Where each runtime puts a container or service, below our own top cgroup. */
export const PLACES = {
  docker: `system.slice/docker-${hex('a')}.scope`,
  containerd: `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD.replace(/-/g, '_')}.slice/cri-containerd-${hex('b')}.scope`,
  crio: `kubepods/besteffort/pod${POD}/${hex('c')}`,
  podman: `machine.slice/libpod-${hex('d')}.scope`,
  service: 'system.slice/ntnat-web.service',
  dockerfs: `docker/${hex('e')}`,
} as const;
export type Place = keyof typeof PLACES;
