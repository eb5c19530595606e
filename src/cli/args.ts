/** `nettrace` with no command: the live stream's usage. */
import { COMMON_HELP } from './options';

export const USAGE = `Usage: nettrace [options] [FILTER]
       nettrace flows [-l|-a] [options] [FILTER]
       nettrace states [options] [FILTER]
       nettrace top [options] [FILTER]

Streams every TCP connect, accept, state change and close, and every UDP
socket's open and close (with its datagram and byte totals and drops), on this
machine, one line each, attributed to the process that owns the socket.

Commands:
  flows               every TCP and UDP socket now, as ss -tuanp shows them (see nettrace flows --help)
  states              the TCP state histogram and transitions per second, live (see nettrace states --help)
  top                 network use per process, remote host and connection, live (see nettrace top --help)

Options:
${COMMON_HELP}
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N events
  -V, --version       show the version

Stop with Ctrl-C: a summary of events and drops goes to stderr.`;
