// SPDX-License-Identifier: MIT
/*
 * consumer: the least any user-space reader of nettrace's ring can cost.
 *
 *   consumer [path/to/nettrace.bpf.o]
 *
 * Loads nettrace's own BPF object with plain libbpf, attaches it, and drains
 * the `events` ring on a 10 ms timer, only counting records. Same kernel side,
 * same batching policy as nettrace (the BPF side rarely wakes readers, see
 * submit() in bpf/nettrace.bpf.h), none of the work of handing batches to
 * JavaScript. On SIGINT/SIGTERM it detaches, takes what is left and prints
 *   {"records": N, "drops": D, "cpu_ms": C}
 * where drops is the `drops` per-CPU map summed: records the ring refused.
 * "ready" on stderr means every program is attached.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 16

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int count_record(void *ctx, void *data, size_t size)
{
	(void)data;
	(void)size;
	++*(unsigned long long *)ctx;
	return 0;
}

static unsigned long long sum_drops(struct bpf_object *obj)
{
	struct bpf_map *map = bpf_object__find_map_by_name(obj, "drops");
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long total = 0, *values;
	__u32 key = 0;

	if (!map || ncpu <= 0)
		return 0;
	values = calloc(ncpu, sizeof(*values));
	if (values && bpf_map_lookup_elem(bpf_map__fd(map), &key, values) == 0)
		for (int i = 0; i < ncpu; i++)
			total += values[i];
	free(values);
	return total;
}

/* where cgroup v2 is mounted, as nettrace's loader finds it: its cgroup programs go on the root */
static int cgroup2_root(void)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int fd = -1;

	while (f && (m = getmntent(f)))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			fd = open(m->mnt_dir, O_RDONLY | O_DIRECTORY);
			break;
		}
	if (f)
		endmntent(f);
	return fd;
}

/* the programs nettrace attaches when asked for nothing more: receive steering and DNS capture are on request */
static int attached_by_default(const struct bpf_program *prog)
{
	const char *name = bpf_program__name(prog);

	return strncmp(name, "steer_", 6) != 0 && strncmp(name, "dns_", 4) != 0;
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "bpf/nettrace.bpf.o";
	struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	struct bpf_link *links[MAX_LINKS];
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct ring_buffer *ring;
	unsigned long long records = 0;
	int n_links = 0, err, cgroup;

	/* a second signal during teardown must not kill us before we print */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "consumer: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* this kernel has no fexit; nettrace falls back to the accept tracepoints */
	prog = bpf_object__find_program_by_name(obj, "on_accept_fexit");
	if (prog)
		bpf_program__set_autoload(prog, false);
	bpf_object__for_each_program(prog, obj)
		if (!attached_by_default(prog))
			bpf_program__set_autoload(prog, false);
	cgroup = cgroup2_root();
	if (cgroup < 0) {
		fprintf(stderr, "consumer: no cgroup v2 mount for the UDP socket programs\n");
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "consumer: load failed: %s\n", strerror(-err));
		return 1;
	}
	/* everything nettrace attaches by default; the iter/ programs only run
	 * when read, so their links just sit idle here */
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		if (n_links == MAX_LINKS) {
			fprintf(stderr, "consumer: more than %d programs\n", MAX_LINKS);
			return 1;
		}
		if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK ||
		    bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
			links[n_links] = bpf_program__attach_cgroup(prog, cgroup);
		else
			links[n_links] = bpf_program__attach(prog);
		if (!links[n_links]) {
			fprintf(stderr, "consumer: cannot attach %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			return 1;
		}
		n_links++;
	}
	ring = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "events")), count_record,
				&records, NULL);
	if (!ring) {
		fprintf(stderr, "consumer: ring_buffer__new: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "ready\n");

	/*
	 * A timer, not epoll: the BPF side submits with BPF_RB_NO_WAKEUP until the
	 * ring is a quarter full, so waiting for wakeups would let it fill first.
	 */
	while (!stop) {
		nanosleep(&tick, NULL);
		ring_buffer__consume(ring);
	}

	/* detach first so nothing new arrives, then take what is left */
	for (int i = 0; i < n_links; i++)
		bpf_link__destroy(links[i]);
	ring_buffer__consume(ring);
	printf("{\"records\": %llu, \"drops\": %llu, \"cpu_ms\": %.0f}\n", records, sum_drops(obj), cpu_ms());
	fflush(stdout);
	ring_buffer__free(ring);
	bpf_object__close(obj);
	return 0;
}
