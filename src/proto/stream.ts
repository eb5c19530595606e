/**
 * Length-delimited frames: each Frame preceded by its byte length as a varint. The decoder takes
 * the stream in chunks of any size, hands out each item as soon as its frame is whole, and stops at
 * the first bad byte with a DecodeError that names the offset; whatever came before is already out.
 */
import { Writer } from 'protobufjs/minimal';
import { FORMAT_VERSION, fromFrame, StreamItem, toFrame } from './codec';
import { nettrace } from './nettrace.pb';
import pb = nettrace.v1;

/** No frame nettrace writes comes near this; a larger length is corruption, not a frame to wait for. */
export const MAX_FRAME = 64 << 20;

/** Encodes items as length-delimited frames, back to back. */
export function encodeItems(items: Iterable<StreamItem>): Uint8Array {
  const w = Writer.create();
  for (const item of items) pb.Frame.encodeDelimited(toFrame(item), w);
  return w.finish();
}

export class DecodeError extends Error {
  constructor(
    /** Byte offset in the stream where the bad frame (or length prefix) starts. */
    readonly offset: number,
    message: string,
  ) {
    super(message.replace(/\s+/g, ' '));
    this.name = 'DecodeError';
  }
}

const oneLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];

export class StreamDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Stream offset of the first buffered byte. */
  private offset = 0;
  private frames = 0;
  /** Frames of a kind this version does not know, skipped. */
  skipped = 0;

  /** Feeds bytes in; calls `emit` for every item now complete. Throws DecodeError at the first bad frame. */
  push(chunk: Uint8Array, emit: (item: StreamItem) => void): void {
    if (chunk.length === 0) return;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.buffered += chunk.length;
    for (;;) {
      const prefix = this.lengthPrefix();
      if (!prefix || this.buffered < prefix.bytes + prefix.length) return;
      const data = this.take(prefix.bytes + prefix.length).subarray(prefix.bytes);
      const at = this.offset;
      this.offset += prefix.bytes + prefix.length;
      const item = this.decodeFrame(data, at);
      if (item) emit(item);
    }
  }

  /** The input ended: throws DecodeError if it ended inside a frame, or before any. */
  end(): void {
    if (this.buffered > 0) {
      const prefix = this.lengthPrefix();
      if (!prefix) throw new DecodeError(this.offset, `truncated stream: the length prefix at byte ${this.offset} is cut off`);
      const have = this.buffered - prefix.bytes;
      throw new DecodeError(this.offset, `truncated stream: the frame at byte ${this.offset} needs ${prefix.length} bytes, only ${have} follow`);
    }
    if (this.frames === 0) throw new DecodeError(0, 'not a nettrace stream: it is empty');
  }

  /** Bytes decoded so far. */
  get position(): number {
    return this.offset;
  }

  /** The varint at the front, or undefined while it is incomplete. */
  private lengthPrefix(): { bytes: number; length: number } | undefined {
    const head = this.peek(5);
    let length = 0;
    for (let i = 0; i < head.length; i++) {
      length += (head[i] & 0x7f) * 2 ** (7 * i);
      if (length > MAX_FRAME) {
        throw new DecodeError(this.offset, `corrupt stream: the frame at byte ${this.offset} claims more than ${MAX_FRAME} bytes`);
      }
      if ((head[i] & 0x80) === 0) return { bytes: i + 1, length };
    }
    return undefined; // five bytes already exceed MAX_FRAME, so an incomplete prefix is shorter
  }

  private peek(n: number): Buffer {
    if (this.chunks.length > 1 && this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks.length ? this.chunks[0].subarray(0, n) : Buffer.alloc(0);
  }

  private take(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0];
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }

  private decodeFrame(data: Buffer, at: number): StreamItem | undefined {
    let frame: pb.Frame;
    try {
      frame = pb.Frame.decode(data);
    } catch (e) {
      throw new DecodeError(at, `corrupt frame at byte ${at}: ${oneLine(e)}`);
    }
    let item: StreamItem | undefined;
    try {
      item = fromFrame(frame);
    } catch (e) {
      throw new DecodeError(at, `invalid frame at byte ${at}: ${oneLine(e)}`);
    }
    if (this.frames++ === 0 && item?.type !== 'header') {
      throw new DecodeError(at, `not a nettrace stream: the first frame (at byte ${at}) is not a nettrace header`);
    }
    if (item?.type === 'header' && item.version > FORMAT_VERSION) {
      throw new DecodeError(at, `the header at byte ${at} is of format version ${item.version}, newer than this nettrace reads (${FORMAT_VERSION})`);
    }
    if (!item) this.skipped++;
    return item;
  }
}

/** Decodes a whole stream held in memory; items before an error are in `items`. */
export function decodeAll(bytes: Uint8Array): { items: StreamItem[]; error?: DecodeError } {
  const items: StreamItem[] = [];
  const d = new StreamDecoder();
  try {
    d.push(bytes, (item) => items.push(item));
    d.end();
    return { items };
  } catch (e) {
    if (e instanceof DecodeError) return { items, error: e };
    throw e;
  }
}
