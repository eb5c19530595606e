/** `nettrace` with no command: the live stream's usage. */
import { COMMON_HELP } from '../options';

export const USAGE = `Usage: nettrace [options] [FILTER]
       nettrace flows [-l|-a] [options] [FILTER]
       nettrace states [options] [FILTER]
       nettrace top [options] [FILTER]
       nettrace decode [--json] [FILE|-]
       nettrace route ADDR [options] [FILTER]
       nettrace routes [-a] [options] [FILTER]
       nettrace serve [--listen HOST:PORT] [--otlp URL] [options] [FILTER]
       nettrace bench churn [options]
       nettrace steering [options] [FILTER]
       nettrace dns [--timeout MS] [options] [FILTER]

Streams every TCP connect, accept, state change and close, and every UDP
socket's open and close (with its datagram and byte totals and drops), on this
machine, one line each, attributed to the process that owns the socket.

Commands:
  flows               every TCP and UDP socket now, as ss -tuanp shows them (see nettrace flows --help)
  states              the TCP state histogram and transitions per second, live (see nettrace states --help)
  top                 network use per process, remote host and connection, live (see nettrace top --help)
  decode              print a --format protobuf stream as text or JSON (see nettrace decode --help)
  route ADDR          the route to ADDR as ip route get says it, and the flows taking it
  routes              the routing table (ip route, route -n) with flows and bytes per route
  serve               metrics for Prometheus (/metrics) and OTLP, until stopped (see nettrace serve --help)
  bench churn         connection churn from native threads, untraced and traced (see nettrace bench --help)
  steering            which CPUs process each flow's packets and which its reader runs on (RPS/RFS), live
  dns                 every DNS lookup: process, server, name, type, rcode, answers, latency, timeouts

Options:
      --events KINDS  the record kinds to stream, a comma list of connect, accept,
                      state, close and udp (default all); the kernel makes no
                      record of the others. --events close is tcplife,
                      --events connect tcpconnect and tcpconnlat, --events accept
                      tcpaccept, --events state tcpstates
${COMMON_HELP}
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N events
      --stats-interval SEC  with --format protobuf, a Stats frame every SEC seconds (default 10) and at the end
  -V, --version       show the version

Stop with Ctrl-C: a summary of events and drops goes to stderr.`;
