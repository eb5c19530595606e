// SPDX-License-Identifier: MIT
/*
 * churn: TCP connection churn on loopback, as fast as the kernel allows.
 *
 *   churn [-d seconds] [-t client_threads] [-a accept_threads] [-b bytes] [-6]
 *
 * A listener on 127.0.0.1 (or ::1) is served by accept threads; each client
 * thread loops: connect, optionally send `bytes` and read them echoed back,
 * wait for the server's FIN, close. Prints one JSON line:
 *   {"conns": N, "seconds": S, "rate": N/S, "errors": E}
 *
 * Closing order, and why: the server closes first (FIN) and the client waits
 * for it, then closes with SO_LINGER {1, 0}, which sends RST instead of FIN.
 *  - The RST takes both sockets straight to CLOSE, so neither side enters
 *    TIME_WAIT: ports are free again at once and a long run never exhausts
 *    the ephemeral range (one source address, no tcp_tw_reuse games).
 *  - Waiting for the server's FIN paces clients to the acceptors. Without it
 *    clients outrun accept(), the accept queue overflows, and the kernel drops
 *    SYNs that are only retried after a second: the rate would then measure
 *    retransmit timers, not tracing overhead.
 * Each connection thus walks the full lifecycle a tracer sees, 8 state
 * transitions and one accept(): client CLOSE>SYN_SENT>ESTABLISHED>CLOSE_WAIT>
 * CLOSE, server child LISTEN>SYN_RECV>ESTABLISHED>FIN_WAIT1>CLOSE (the
 * client's RST nearly always overtakes its ACK of the FIN, so FIN_WAIT2 is rare).
 *
 * Thread counts (defaults: 32 clients, 8 acceptors on a 2-CPU machine): far
 * more threads than CPUs, because each connection blocks twice (connect's
 * wakeup of an acceptor, the wait for its FIN). With a few threads the rate
 * depended on where the scheduler happened to put them, +-15% run to run;
 * with many, both CPUs stay busy and runs agree within a few percent.
 *
 * Bounded: clients stop after the duration, every socket has 1 s timeouts so
 * nothing blocks forever, and an alarm kills the process if it overruns anyway.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BYTES 4096

static int duration = 5;
static int n_clients = 32;
static int n_acceptors = 8;
static int n_bytes;
static int family = AF_INET;

static int listen_fd;
static struct sockaddr_storage server;
static socklen_t server_len;
static atomic_bool stop;
static pthread_barrier_t start_line;

struct client {
	pthread_t thread;
	unsigned long conns;  /* completed: connected, exchanged, saw the FIN */
	unsigned long errors; /* anything else */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Short reads and writes are possible on a stream; loop until done or failed. */
static int read_full(int fd, char *buf, int len)
{
	for (int got = 0; got < len;) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

static int write_full(int fd, const char *buf, int len)
{
	for (int put = 0; put < len;) {
		ssize_t n = write(fd, buf + put, len - put);

		if (n <= 0)
			return -1;
		put += n;
	}
	return 0;
}

static void set_timeouts(int fd)
{
	/* also bounds connect(), which waits with the send timeout */
	struct timeval tv = { .tv_sec = 1 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void *acceptor(void *arg)
{
	char buf[MAX_BYTES];

	(void)arg;
	pthread_barrier_wait(&start_line);
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (atomic_load(&stop))
				return NULL; /* main shut the listener down */
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept4");
		}
		if (n_bytes) {
			set_timeouts(fd);
			if (read_full(fd, buf, n_bytes) == 0)
				write_full(fd, buf, n_bytes);
		}
		close(fd); /* server closes first: see the comment at the top */
	}
}

static void *client(void *arg)
{
	struct client *c = arg;
	struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	char buf[MAX_BYTES];

	memset(buf, 'x', sizeof(buf));
	pthread_barrier_wait(&start_line);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = 0;
		char eof;

		if (fd < 0)
			die("socket");
		set_timeouts(fd);
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		if (connect(fd, (struct sockaddr *)&server, server_len) == 0 &&
		    (!n_bytes || (write_full(fd, buf, n_bytes) == 0 && read_full(fd, buf, n_bytes) == 0)))
			ok = read(fd, &eof, 1) == 0; /* the server's FIN */
		close(fd);
		if (ok)
			c->conns++;
		else
			c->errors++;
	}
	return NULL;
}

static void listen_loopback(void)
{
	int one = 1;

	memset(&server, 0, sizeof(server));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&server;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		server_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&server;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		server_len = sizeof(*a);
	}
	listen_fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		die("socket");
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* port 0: the kernel picks a free one, so runs never collide */
	if (bind(listen_fd, (struct sockaddr *)&server, server_len) < 0)
		die("bind");
	if (listen(listen_fd, 4096) < 0)
		die("listen");
	if (getsockname(listen_fd, (struct sockaddr *)&server, &server_len) < 0)
		die("getsockname");
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d seconds] [-t client_threads] [-a accept_threads] [-b bytes] [-6]\n",
		argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	struct client *clients;
	pthread_t *acceptors;
	unsigned long conns = 0, errors = 0;
	double t0, t1;
	int opt;

	while ((opt = getopt(argc, argv, "d:t:a:b:6h")) != -1) {
		switch (opt) {
		case 'd': duration = atoi(optarg); break;
		case 't': n_clients = atoi(optarg); break;
		case 'a': n_acceptors = atoi(optarg); break;
		case 'b': n_bytes = atoi(optarg); break;
		case '6': family = AF_INET6; break;
		default: usage(argv[0]);
		}
	}
	if (duration < 1 || n_clients < 1 || n_acceptors < 1 || n_bytes < 0 || n_bytes > MAX_BYTES)
		usage(argv[0]);

	alarm(duration + 10); /* last resort: the default action ends the process */
	listen_loopback();

	clients = calloc(n_clients, sizeof(*clients));
	acceptors = calloc(n_acceptors, sizeof(*acceptors));
	if (!clients || !acceptors)
		die("calloc");
	pthread_barrier_init(&start_line, NULL, n_clients + n_acceptors + 1);
	for (int i = 0; i < n_acceptors; i++)
		if (pthread_create(&acceptors[i], NULL, acceptor, NULL))
			die("pthread_create");
	for (int i = 0; i < n_clients; i++)
		if (pthread_create(&clients[i].thread, NULL, client, &clients[i]))
			die("pthread_create");

	pthread_barrier_wait(&start_line);
	t0 = now_s();
	usleep(duration * 1000000u);
	atomic_store(&stop, 1);
	for (int i = 0; i < n_clients; i++) {
		pthread_join(clients[i].thread, NULL);
		conns += clients[i].conns;
		errors += clients[i].errors;
	}
	/* until the last client is done: its final connection counted too */
	t1 = now_s();
	/* shutdown() wakes threads blocked in accept() on Linux */
	shutdown(listen_fd, SHUT_RDWR);
	for (int i = 0; i < n_acceptors; i++)
		pthread_join(acceptors[i], NULL);
	close(listen_fd);

	printf("{\"conns\": %lu, \"seconds\": %.3f, \"rate\": %.0f, \"errors\": %lu}\n",
	       conns, t1 - t0, conns / (t1 - t0), errors);
	return 0;
}
