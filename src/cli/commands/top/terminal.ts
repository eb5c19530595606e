/**
 * The terminal as a full-screen view with plain ANSI: the alternate screen,
 * a hidden cursor, no auto-wrap and raw input while open, and all of it put
 * back by restore(), which is synchronous and safe to call any number of
 * times, so every way out (a key, a signal, an error, process exit) can call it.
 */
import fs from 'node:fs';
import { decodeKeys, Key } from './input';
import { ScreenLine, Style } from './screen';

const CSI = '\x1b[';
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
const ENTER = `${CSI}?1049h${CSI}?25l${CSI}?7l${CSI}2J`;
// reset attributes first, so nothing the view set leaks into the shell's screen
const LEAVE = `${CSI}0m${CSI}?7h${CSI}?25h${CSI}?1049l`;

const SGR: Record<Style, string> = {
  plain: '',
  bar: `${CSI}7m`,
  title: `${CSI}1m`,
  focus: `${CSI}1;7m`,
  head: `${CSI}4m`,
  dim: `${CSI}2m`,
  error: `${CSI}1;31m`,
};

export function ansiLine(line: ScreenLine): string {
  return line.map((s) => (SGR[s.style] ? `${SGR[s.style]}${s.text}${CSI}0m` : s.text)).join('');
}

export class AnsiTerminal {
  private active = false;
  private readonly onData = (data: string | Buffer): void => this.onKeys(decodeKeys(data.toString()));

  constructor(
    private readonly output: NodeJS.WriteStream,
    private readonly input: NodeJS.ReadStream,
    private readonly onKeys: (keys: Key[]) => void,
    private readonly onResize: () => void,
  ) {}

  size(): { width: number; height: number } {
    return { width: this.output.columns || 80, height: this.output.rows || 24 };
  }

  open(): void {
    if (this.active) return;
    this.active = true;
    this.write(ENTER);
    if (this.input.isTTY) {
      this.input.setRawMode(true);
      this.input.setEncoding('utf8');
      this.input.on('data', this.onData);
      this.input.resume();
    }
    this.output.on('resize', this.onResize);
  }

  /** Paints every line from the top-left; with auto-wrap off and lines cut to the width, nothing can scroll. */
  draw(lines: ScreenLine[]): void {
    if (!this.active) return;
    this.write(`${CSI}H` + lines.map(ansiLine).join('\r\n'));
  }

  restore(): void {
    if (!this.active) return;
    this.active = false;
    this.output.off('resize', this.onResize);
    if (this.input.isTTY) {
      this.input.off('data', this.onData);
      try {
        this.input.setRawMode(false);
      } catch {
        // the terminal may be gone (SIGHUP); there is nothing left to restore then
      }
      this.input.pause();
    }
    this.write(LEAVE);
  }

  get isOpen(): boolean {
    return this.active;
  }

  /** Synchronous, so the screen is restored before the process can exit. */
  private write(text: string): void {
    const fd = (this.output as NodeJS.WriteStream & { fd?: number }).fd;
    if (typeof fd !== 'number') return void this.output.write(text);
    const buf = Buffer.from(text);
    let done = 0;
    for (let busy = 0; done < buf.length && busy < 1000; ) {
      try {
        done += fs.writeSync(fd, buf, done);
      } catch (e) {
        // a non-blocking terminal that is momentarily full: try again; a hung-up one takes no more output
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        busy++;
        Atomics.wait(PAUSE, 0, 0, 1);
      }
    }
  }
}
