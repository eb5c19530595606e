/** Process names of records, decoded once per process. */
import { RecordCursor } from '../record-cursor';

/**
 * Owners' names by pid. Decoding a comm for every new socket was a tenth of
 * the table's time at churn; the record's bytes are still compared, so a name
 * that exec() changed is seen.
 */
export class CommNames {
  private readonly byPid = new Map<number, { w0: number; w1: number; w2: number; w3: number; name: string }>();

  name(c: RecordCursor, pid: number): string {
    const w0 = c.commWord(0);
    const w1 = c.commWord(1);
    const w2 = c.commWord(2);
    const w3 = c.commWord(3);
    const e = this.byPid.get(pid);
    if (e !== undefined && e.w0 === w0 && e.w1 === w1 && e.w2 === w2 && e.w3 === w3) return e.name;
    if (this.byPid.size >= 4096) this.byPid.clear(); // bounded, however many processes come and go
    const name = c.comm;
    this.byPid.set(pid, { w0, w1, w2, w3, name });
    return name;
  }
}
