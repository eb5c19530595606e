/** --container ID and --unit NAME as the cgroup ids the kernel filter takes. */
import { CgroupResolver } from '../flows/cgroups';

/** At most what the kernel's cgroup set holds. */
const MAX_CGROUPS = 1024;

/**
 * The cgroups of the named container and unit (both must hold when both are given), each with the
 * cgroups below it as they are now; undefined when neither is given. Naming nothing that exists throws (the caller's usage error).
 */
export function ownedCgroups(container: string | undefined, unit: string | undefined, cgroups = new CgroupResolver()): Set<number> | undefined {
  if (container === undefined && unit === undefined) return undefined;
  if (cgroups.root === undefined) throw new Error('--container and --unit need cgroup v2, and none is mounted');
  let ids: number[] | undefined;
  if (container !== undefined) {
    if (!/^[0-9a-fA-F]{4,64}$/.test(container)) throw new Error(`--container takes a container id of 4 to 64 hex digits, not '${container}'`);
    ids = cgroups.containerIds(container);
    if (ids.length === 0) throw new Error(`no cgroup of container ${container} under ${cgroups.root}`);
  }
  if (unit !== undefined) {
    if (unit === '' || unit.includes('/')) throw new Error(`--unit takes a systemd unit name, not '${unit}'`);
    const inUnit = cgroups.unitIds(unit);
    if (inUnit.length === 0) throw new Error(`no cgroup of unit ${unit} under ${cgroups.root}`);
    ids = ids === undefined ? inUnit : ids.filter((id) => inUnit.includes(id));
    if (ids.length === 0) throw new Error(`container ${container} is not in unit ${unit}`);
  }
  if (ids!.length > MAX_CGROUPS) throw new Error(`that names ${ids!.length} cgroups; the kernel filter takes at most ${MAX_CGROUPS}`);
  return new Set(ids);
}
