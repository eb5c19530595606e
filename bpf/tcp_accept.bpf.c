// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Accepts: the process that accept() handed a passive socket to becomes its
 * owner in the socket table (tcp_socks.bpf.h), and the time the connection
 * waited in the accept queue goes to the ring. Two ways in, as the loader's
 * "accept" hook chooses: fexit where the kernel has trampolines, the accept
 * syscalls' exit tracepoints where it has not.
 */
#include "nettrace.bpf.h"
#include "tcp_socks.bpf.h"

static __always_inline void emit_accept(__u64 key, const struct sock *btf_sk)
{
	struct sock_info *si = bpf_map_lookup_elem(&socks, &key);
	struct nt_sock tuple;
	struct nt_accept *r;
	__u64 now = bpf_ktime_get_ns();

	if (!si)
		return; /* not TCP, or established before tracing began */
	capture_task_owner(&si->owner);
	if (btf_sk)
		read_sock(&tuple, &btf_sk->__sk_common);
	else
		__builtin_memcpy(&tuple, &si->sock, sizeof(tuple));
	if (!WANTS(NT_ACCEPT) || !wanted(&tuple, &si->owner))
		return;
	r = reserve(sizeof(*r), NT_ACCEPT);
	if (!r)
		return;
	head(&r->h, NT_ACCEPT, sizeof(*r), now);
	__builtin_memcpy(&r->h.sock, &tuple, sizeof(r->h.sock));
	__builtin_memcpy(&r->h.owner, &si->owner, sizeof(r->h.owner));
	r->queued_ns = si->mark_ns ? now - si->mark_ns : 0;
	submit(r);
}

/*
 * Preferred accept hook. inet_csk_accept lost its flags/err/kern arguments to
 * struct proto_accept_arg in 6.10, which moves where fexit finds the result.
 */
SEC("fexit/inet_csk_accept")
int on_accept_fexit(__u64 *ctx)
{
	struct sock *sk;

	/*
	 * One load per branch: merged, clang would add a computed offset to
	 * ctx, which the verifier refuses. The barriers keep them apart.
	 */
	if (bpf_core_type_exists(struct proto_accept_arg)) {
		sk = (struct sock *)ctx[2];
		barrier_var(sk);
	} else {
		sk = (struct sock *)ctx[4];
		barrier_var(sk);
	}
	if (sk)
		emit_accept((__u64)sk, sk);
	return 0;
}

/*
 * Fallback for kernels without fentry/fexit: accept(2) and accept4(2) return
 * the new descriptor in the accepting process; follow it to the socket.
 */
struct sys_exit_ctx {
	__u64 _common;
	__s64 nr;
	__s64 ret;
};

static __always_inline int accept_exit(struct sys_exit_ctx *ctx)
{
	struct task_struct *task;
	struct file **fds;
	struct file *file;
	struct socket *sock;
	struct sock *sk;
	__s64 fd = ctx->ret;

	if (fd < 0)
		return 0;
	if (has_task_btf()) {
		/* BTF loads, not a probe read per hop: only what is not BTF-typed needs one */
		task = bpf_get_current_task_btf();
		fds = task->files->fdt->fd;
	} else {
		task = (struct task_struct *)bpf_get_current_task();
		fds = BPF_CORE_READ(task, files, fdt, fd);
	}
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (sk)
		emit_accept((__u64)sk, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int on_accept4_exit(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int on_accept_exit(struct sys_exit_ctx *ctx)
{
	return accept_exit(ctx);
}
