/** The frames around a command's protobuf output: the header that opens it and the stats that close it. */
import os from 'node:os';
import { FORMAT_VERSION, StatsRecord, StreamHeader } from '../proto/codec';
import { TracerStats } from '../trace-options';

const VERSION: string = require('../../../package.json').version;

export function streamHeader(command: string): StreamHeader {
  return { type: 'header', version: FORMAT_VERSION, producer: `nettrace ${VERSION}`, hostname: os.hostname(), started: Date.now(), command };
}

export function statsRecord(tracer: { stats(): TracerStats }): StatsRecord {
  return { type: 'stats', ts: Date.now(), ...tracer.stats() };
}
