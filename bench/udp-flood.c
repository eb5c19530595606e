// SPDX-License-Identifier: MIT
/*
 * A UDP flood over loopback: one thread sends small datagrams as fast as it
 * can, another receives them. Prints one JSON line with what each side did,
 * so a tracer's totals can be held against it:
 *   {"seconds":..,"cpu_ms":..,"sent":..,"sent_bytes":..,"received":..,"received_bytes":..,"drops":..,"sport":..,"dport":..}
 * drops is the kernel's own count for the receiving socket (SO_MEMINFO);
 * cpu_ms the CPU both threads used (user + system, loopback delivery included),
 * which other load on a shared machine disturbs far less than the rate.
 *
 *   udp-flood [-s SECONDS] [-p PAYLOAD] [-c]    -c: connected sockets (send/recv), else sendto/recvfrom
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int payload = 16;
static int connected;
static atomic_int stop_receiving;
static int rx_fd;
static unsigned long received, received_bytes;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static double cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *receive(void *arg)
{
	char buf[65536];
	struct sockaddr_in from;
	socklen_t len;
	ssize_t n;

	(void)arg;
	for (;;) {
		len = sizeof(from);
		n = connected ? recv(rx_fd, buf, sizeof(buf), 0)
			      : recvfrom(rx_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
		if (n >= 0) {
			received++;
			received_bytes += n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (atomic_load(&stop_receiving))
				return NULL; /* the queue is empty and the sender is done */
		} else if (errno != EINTR) {
			die("recv");
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in rx_addr = { .sin_family = AF_INET }, tx_addr;
	struct timeval tick = { .tv_usec = 100000 };
	unsigned long sent = 0, sent_bytes = 0;
	double seconds = 5, start, elapsed, cpu0;
	int opt, tx_fd, rcvbuf = 4 << 20;
	__u32 meminfo[SK_MEMINFO_VARS];
	socklen_t len = sizeof(rx_addr);
	pthread_t receiver;
	char *buf;

	while ((opt = getopt(argc, argv, "s:p:c")) != -1) {
		if (opt == 's')
			seconds = atof(optarg);
		else if (opt == 'p')
			payload = atoi(optarg);
		else if (opt == 'c')
			connected = 1;
		else
			return 2;
	}
	prctl(PR_SET_NAME, "udp-flood");
	buf = calloc(1, payload > 0 ? payload : 1);
	rx_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((rx_fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 || (tx_fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		die("socket");
	setsockopt(rx_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(rx_fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick));
	if (bind(rx_fd, (struct sockaddr *)&rx_addr, sizeof(rx_addr)) || getsockname(rx_fd, (struct sockaddr *)&rx_addr, &len))
		die("bind");
	tx_addr = rx_addr;
	tx_addr.sin_port = 0;
	if (bind(tx_fd, (struct sockaddr *)&tx_addr, sizeof(tx_addr)))
		die("bind");
	len = sizeof(tx_addr);
	getsockname(tx_fd, (struct sockaddr *)&tx_addr, &len);
	if (connected && (connect(tx_fd, (struct sockaddr *)&rx_addr, sizeof(rx_addr)) ||
			  connect(rx_fd, (struct sockaddr *)&tx_addr, sizeof(tx_addr))))
		die("connect");
	if (pthread_create(&receiver, NULL, receive, NULL))
		die("pthread_create");

	cpu0 = cpu_ms();
	start = now();
	do {
		for (int i = 0; i < 256; i++) {
			ssize_t n = connected ? send(tx_fd, buf, payload, 0)
					      : sendto(tx_fd, buf, payload, 0, (struct sockaddr *)&rx_addr, sizeof(rx_addr));
			if (n < 0) {
				if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED)
					continue;
				die("send");
			}
			sent++;
			sent_bytes += n;
		}
		elapsed = now() - start;
	} while (elapsed < seconds);
	atomic_store(&stop_receiving, 1);
	pthread_join(receiver, NULL);

	len = sizeof(meminfo);
	if (getsockopt(rx_fd, SOL_SOCKET, SO_MEMINFO, meminfo, &len))
		die("SO_MEMINFO");
	printf("{\"seconds\":%.3f,\"cpu_ms\":%.1f,\"sent\":%lu,\"sent_bytes\":%lu,\"received\":%lu,\"received_bytes\":%lu,"
	       "\"drops\":%u,\"sport\":%u,\"dport\":%u}\n",
	       elapsed, cpu_ms() - cpu0, sent, sent_bytes, received, received_bytes, meminfo[SK_MEMINFO_DROPS],
	       ntohs(tx_addr.sin_port), ntohs(rx_addr.sin_port));
	close(tx_fd);
	close(rx_fd);
	return 0;
}
