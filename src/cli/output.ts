/** Where a command's output goes: stdout, a file (--output FILE) or a Unix stream socket (--output unix:PATH). */
import fs from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';

/** Bytes a destination may hold unwritten before further writes are dropped (and counted by the caller). */
export const MAX_PENDING = 16 << 20;

export interface Output {
  /** False when the data was dropped: the reader is gone, or behind by more than MAX_PENDING bytes. */
  write(data: string | Uint8Array): boolean;
  /** Resolves once everything written is handed to the kernel and the destination closed. */
  close(): Promise<void>;
  /** Resolves when the reader went away (closed pipe or socket); writes after it are dropped. */
  readonly gone: Promise<void>;
}

function wrap(stream: Writable, closeIt: boolean): Output {
  let isGone = false;
  const gone = new Promise<void>((resolve) => {
    const leave = (): void => {
      isGone = true;
      resolve();
    };
    stream.on('error', leave);
    if (closeIt) stream.on('close', leave);
  });
  return {
    write: (data) => {
      if (isGone || stream.writableLength > MAX_PENDING) return false;
      stream.write(data);
      return true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (isGone) return resolve();
        if (closeIt) stream.end(() => resolve());
        else stream.write('', () => resolve());
      }),
    gone,
  };
}

const reason = (e: unknown): string => ((e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e)));

/** Opens the destination; throws an Error with one sentence when it cannot. */
export async function openOutput(spec: string | undefined): Promise<Output> {
  if (spec === undefined || spec === '-') return wrap(process.stdout, false);
  if (spec.startsWith('unix:')) {
    const path = spec.slice('unix:'.length);
    const socket = net.createConnection({ path });
    try {
      await once(socket, 'connect');
    } catch (e) {
      throw new Error(`cannot connect to the Unix socket ${path}: ${reason(e)}`);
    }
    socket.on('data', () => {}); // a reader that talks back is not our concern
    return wrap(socket, true);
  }
  const file = fs.createWriteStream(spec, { flags: 'w' });
  try {
    await once(file, 'open');
  } catch (e) {
    throw new Error(`cannot write ${spec}: ${reason(e)}`);
  }
  return wrap(file, true);
}
