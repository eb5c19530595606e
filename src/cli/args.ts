/** `nettrace` with no command: the live stream's usage. */
import { COMMON_HELP } from './options';

export const USAGE = `Usage: nettrace [options] [FILTER]
       nettrace flows [-l|-a] [options] [FILTER]
       nettrace states [options] [FILTER]
       nettrace top [options] [FILTER]
       nettrace steering [options] [FILTER]

Streams every TCP connect, accept, state change and close on this machine,
one line each, attributed to the process that owns the socket.

Commands:
  flows               every TCP socket now, as ss -tanp shows them (see nettrace flows --help)
  states              the TCP state histogram and transitions per second, live (see nettrace states --help)
  top                 network use per process, remote host and connection, live (see nettrace top --help)
  steering            which CPUs process each flow's packets and which its reader runs on (RPS/RFS), live

Options:
${COMMON_HELP}
  -d, --duration SEC  stop after SEC seconds
  -c, --count N       stop after N events
  -V, --version       show the version

Stop with Ctrl-C: a summary of events and drops goes to stderr.`;
