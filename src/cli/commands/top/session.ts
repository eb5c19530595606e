/** What every form of `nettrace top` shares: its streams, and how it ends. */
import { FlowSource } from '../../../flows/flow-source';
import { TracerStats } from '../../../trace-options';

/** Where the view reads keys and writes: the process's own streams, or a test's stand-ins. */
export interface TopIo {
  output: NodeJS.WriteStream;
  input: NodeJS.ReadStream;
  errors: NodeJS.WritableStream;
}

/** What top reads of a tracer: its flows and its counters (a Tracer, or a test's fake). */
export interface TopSource extends FlowSource {
  stats(): TracerStats;
}

/** A running view; quit() ends it (restoring the terminal first, if it took it) and then calls the command's `done`. */
export interface TopSession {
  quit(code: number, message?: string): void;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
