/**
 * `nettrace states`: the TCP state histogram (netstat -tan | awk '{print $6}' | sort | uniq -c),
 * live, with transitions per second between states and an ss -s style summary.
 */
import { Kind } from '../layout';
import { FlowMonitor } from '../flows/monitor';
import { Flow } from '../flows/table';
import { stateName, TcpState } from '../tcp';
import { Tracer } from '../tracer';
import { CommonOptions } from './options';

export interface StatesOptions extends CommonOptions {
  intervalMs: number;
}

export interface StatesReport {
  ts: number;
  /** Sockets per state now, TIME_WAIT and pending SYN_RECV included, as ss -tan counts them. */
  states: Partial<Record<TcpState, number>>;
  /** "OLD>NEW": transitions per second over the last interval. */
  transitions: Record<string, number>;
  summary: { total: number; estab: number; closed: number; synrecv: number; timewait: number };
}

/** What ss -tan lists: sockets that exist now (closed flows in their grace period do not). */
export function histogram(flows: Flow[]): Partial<Record<TcpState, number>> {
  const h: Partial<Record<TcpState, number>> = {};
  for (const f of flows) {
    if (f.closed !== null && f.state !== 'TIME_WAIT') continue;
    const s = f.state === 'NEW_SYN_RECV' ? 'SYN_RECV' : f.state;
    h[s] = (h[s] ?? 0) + 1;
  }
  return h;
}

export function renderStates(r: StatesReport): string {
  const lines = Object.entries(r.states)
    .sort((a, b) => b[1] - a[1])
    .map(([s, n]) => `${String(n).padStart(8)} ${s}`);
  const moves = Object.entries(r.transitions)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n.toFixed(1).padStart(8)}/s ${t}`);
  const s = r.summary;
  return [
    `${new Date(r.ts).toISOString()}  TCP: ${s.total} (estab ${s.estab}, closed ${s.closed}, synrecv ${s.synrecv}, timewait ${s.timewait})`,
    ...lines,
    ...(moves.length ? ['transitions:', ...moves] : []),
  ].join('\n');
}

/** Starts the reports; returns how to end them (the timer first, so no report reads a stopped tracer). */
export function statesCommand(o: StatesOptions, tracer: Tracer, done: (code: number) => void): (code: number) => void {
  const monitor = new FlowMonitor(tracer);
  const moves = new Map<string, number>();
  tracer.onBatch((c) => {
    while (c.next()) {
      if (c.kind !== Kind.State) continue;
      const key = `${stateName(c.oldState)}>${stateName(c.newState)}`;
      moves.set(key, (moves.get(key) ?? 0) + 1);
    }
  });
  let last = Date.now();
  let reports = 0;
  let timer: NodeJS.Timeout | undefined;
  const report = (): void => {
    const now = Date.now();
    monitor.refresh(now);
    const flows = monitor.table.flows().filter((f) => f.proto === 'tcp' && o.match(f));
    const states = histogram(flows);
    const dt = (now - last) / 1000;
    last = now;
    const transitions = Object.fromEntries([...moves].map(([k, n]) => [k, Math.round((n / dt) * 10) / 10]));
    moves.clear();
    const total = Object.values(states).reduce((a, b) => a + (b ?? 0), 0);
    const r: StatesReport = {
      ts: now,
      states,
      transitions,
      summary: {
        total,
        estab: states.ESTABLISHED ?? 0,
        closed: (states.CLOSE ?? 0) + (states.TIME_WAIT ?? 0),
        synrecv: states.SYN_RECV ?? 0,
        timewait: states.TIME_WAIT ?? 0,
      },
    };
    process.stdout.write((o.json ? JSON.stringify(r) : renderStates(r) + '\n') + '\n');
    if (o.count !== undefined && ++reports >= o.count) end(0);
  };
  let ended = false;
  const end = (code: number): void => {
    clearInterval(timer);
    if (!ended) done(code);
    ended = true;
  };
  report();
  if (!ended) timer = setInterval(report, o.intervalMs);
  return end;
}
