/**
 * The full-screen form of `nettrace top`: redraws every interval, on each key
 * and on resize, and gives the terminal back on every way out.
 */
import { FlowMonitor } from '../../../flows/flow-monitor';
import { CgroupResolver } from '../../../flows/cgroups';
import { NatResolver } from '../../../flows/nat';
import { RouteResolver } from '../../../flows/routes';
import { Flow } from '../../../flows/flow';
import { Key } from './input';
import { buildModel } from './view-model';
import { renderScreen } from './screen';
import { TopOptions } from '../../view-options';
import { messageOf, TopIo, TopSession, TopSource } from './session';
import { AnsiTerminal } from './terminal';
import { applyKey, initialUi, TopUi } from './ui';

interface Frame {
  /** Copies: the table's flows change under us as records arrive, and a paused view must not. */
  flows: Flow[];
  stats: { drops: number; missed: number };
}

export function runScreen(o: TopOptions, tracer: TopSource, done: (code: number) => void, io: TopIo): TopSession {
  // routes arrive after the refresh that asked for them, and show from the next frame on
  const routes = new RouteResolver();
  const monitor = new FlowMonitor(tracer, {}, routes, { containers: new CgroupResolver(), nat: new NatResolver() });
  const capture = (): Frame => {
    monitor.refresh();
    const s = tracer.stats();
    return { flows: monitor.table.flows().map((f) => ({ ...f })), stats: { drops: s.drops, missed: s.missed } };
  };
  let ui: TopUi = initialUi();
  let frame = capture();
  let ticks = 0;
  let ended = false;
  let timer: NodeJS.Timeout | undefined;

  const redraw = (): void => {
    const match = ui.filterMatch;
    const model = buildModel(frame.flows, match ? (f) => o.match(f) && match(f) : o.match, ui.sort, Infinity, ui.grouping);
    const { width, height } = terminal.size();
    terminal.draw(renderScreen({ model, ui, stats: frame.stats }, width, height));
  };
  const guarded =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      try {
        fn(...args);
      } catch (e) {
        session.quit(1, messageOf(e));
      }
    };
  const onKeys = guarded((keys: Key[]) => {
    for (const key of keys) {
      const next = applyKey(ui, key);
      ui = next.ui;
      if (next.quit) return session.quit(0);
    }
    redraw();
  });
  const terminal = new AnsiTerminal(io.output, io.input, onKeys, guarded(redraw));

  // Ctrl-Z is a plain byte in raw mode, but a stop signal from elsewhere must not leave the shell in our screen
  const suspend = (): void => {
    terminal.restore();
    process.kill(process.pid, 'SIGSTOP');
  };
  const resume = guarded(() => {
    terminal.open();
    redraw();
  });
  const restoreAtExit = (): void => terminal.restore();
  // restore before the error is printed, or leaving the alternate screen would wipe it
  const crash = (e: unknown): void => session.quit(1, messageOf(e));

  const session: TopSession = {
    quit(code, message) {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      terminal.restore();
      process.off('exit', restoreAtExit);
      process.off('uncaughtException', crash);
      process.off('SIGTSTP', suspend);
      process.off('SIGCONT', resume);
      monitor.close();
      routes.close();
      if (message) io.errors.write(`nettrace: ${message}\n`);
      done(code);
    },
  };

  process.on('exit', restoreAtExit);
  process.on('uncaughtException', crash);
  process.on('SIGTSTP', suspend);
  process.on('SIGCONT', resume);
  terminal.open();
  guarded(redraw)();
  if (ended) return session;
  timer = setInterval(
    guarded(() => {
      if (!ui.paused) frame = capture();
      redraw();
      if (o.count !== undefined && ++ticks >= o.count) session.quit(0);
    }),
    o.intervalMs,
  );
  return session;
}
