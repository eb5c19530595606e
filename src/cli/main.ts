/** `nettrace [command]`: hands the arguments to the command they name, and turns bad usage into one line and exit 2. */
import { NettraceError } from '../errors';
import { BENCH_USAGE, benchCommand, parseBench } from './commands/bench';
import { runDecode } from './commands/decode';
import { runDns } from './commands/dns';
import { runFlows } from './commands/flows';
import { runRoute, runRoutes } from './commands/route';
import { runServe } from './commands/serve';
import { runStates } from './commands/states';
import { runSteering } from './commands/steering';
import { runStream } from './commands/event-stream';
import { runTop } from './commands/top/top';
import { fail } from './lifecycle';
import { UsageError } from './options';

/** `nettrace bench churn`: runs without the tracer of the other commands; resolves to its own exit code. */
function runBench(argv: string[]): void {
  const o = parseBench(argv);
  if (!o) return void process.stdout.write(BENCH_USAGE + '\n');
  benchCommand(o).then(
    (code) => process.exit(code),
    (e) => fail(e instanceof NettraceError ? e.message : e instanceof Error ? e.message : String(e), 1),
  );
}

/** Every command by its name; with none of them, the arguments are the stream's. */
const COMMANDS = new Map<string, (argv: string[]) => void>([
  ['bench', runBench],
  ['flows', runFlows],
  ['states', runStates],
  ['top', runTop],
  ['decode', runDecode],
  ['route', runRoute],
  ['routes', runRoutes],
  ['serve', runServe],
  ['steering', runSteering],
  ['dns', runDns],
]);

export function main(argv = process.argv.slice(2)): void {
  try {
    const [command, ...rest] = argv;
    const run = command === undefined ? undefined : COMMANDS.get(command);
    if (run) return run(rest);
    runStream(argv);
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message} (see nettrace --help)`, 2);
    throw e;
  }
}
