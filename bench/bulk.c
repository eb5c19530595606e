/*
 * A bulk TCP stream for bench/steering.sh.
 *   bulk sink PORT                 accepts one connection, reads it to the end,
 *                                  prints {"bytes":N}
 *   bulk source ADDR PORT SECONDS  writes 64 KiB at a time for SECONDS, then closes;
 *                                  prints {"bytes":N,"seconds":S,"gbps":G}
 */
#include <arpa/inet.h>
#include <err.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int sink(int port)
{
	static char buf[256 << 10];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), s;
	long long total = 0;
	ssize_t n;

	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		err(1, "sink: listen");
	printf("{\"listening\":%d}\n", port);
	fflush(stdout);
	s = accept(l, NULL, NULL);
	if (s < 0)
		err(1, "sink: accept");
	while ((n = read(s, buf, sizeof(buf))) > 0)
		total += n;
	printf("{\"bytes\":%lld}\n", total);
	return 0;
}

static int source(const char *addr, int port, double seconds)
{
	static char buf[64 << 10];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_STREAM, 0);
	long long total = 0;
	double start, end;
	ssize_t n;

	inet_pton(AF_INET, addr, &a.sin_addr);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		err(1, "source: connect");
	memset(buf, 'b', sizeof(buf));
	start = now();
	end = start + seconds;
	while (now() < end) {
		n = write(s, buf, sizeof(buf));
		if (n < 0)
			err(1, "source: write");
		total += n;
	}
	close(s);
	printf("{\"bytes\":%lld,\"seconds\":%.3f,\"gbps\":%.3f}\n", total, now() - start, total * 8 / (now() - start) / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "sink"))
		return sink(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "source"))
		return source(argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: bulk sink PORT | bulk source ADDR PORT SECONDS\n");
	return 2;
}
