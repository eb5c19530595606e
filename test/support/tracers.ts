/** Tracers a test file starts in its own process, every one stopped when the file is done with them. */
import { TraceOptions, Tracer } from '../../src';

export class Tracers {
  private readonly started: Tracer[] = [];

  /** Tracer.start, remembered for stopAll(). */
  readonly start = (options: TraceOptions = {}): Tracer => {
    const t = Tracer.start(options);
    this.started.push(t);
    return t;
  };

  /** Stops every tracer started here (stop() is safe on one already stopped). */
  stopAll(): Promise<void> {
    return Promise.all(this.started.map((t) => t.stop())).then(() => {});
  }
}
