/** A FIFO the CLI writes its kernel ids to (NETTRACE_KERNEL_IDS), read without blocking, and a process held opening one. */
import fs from 'node:fs';

/** Reads a FIFO a writer is blocked on (or will open soon) without ever blocking this thread. */
export async function readFifo(fifo: string, timeoutMs = 10000): Promise<string> {
  const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  const end = Date.now() + timeoutMs;
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        if (Date.now() > end) throw new Error(`nothing came through ${fifo}`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (n === 0 && chunks.length > 0) return Buffer.concat(chunks).toString();
      if (n === 0) {
        if (Date.now() > end) return '';
        await new Promise((r) => setTimeout(r, 10)); // the writer has not opened yet
        continue;
      }
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the process's main thread sleeps in open() of a FIFO, waiting for a reader. */
export function heldAtFifo(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8') === 'wait_for_partner';
  } catch {
    return false;
  }
}
