/**
 * Where an unconnected UDP socket's datagrams went, for its close record: the
 * remote endpoints the kernel counted in udp_peers (sendto/recvfrom
 * addresses), the PEERS_SHOWN with the most bytes and the rest summed. Read
 * once per batch that holds such a close: the map outlives the socket.
 */
import { RecordCursor } from '../record-cursor';
import { UdpEvent } from '../events';
import { Kind, UdpEvent as UdpEventCode } from '../layout';
import { decodePeers, PeerRow } from './snapshot';
import { PEERS_SHOWN } from './flow';

export type ClosePeer = Omit<PeerRow, 'sock'>;

/** The endpoints past the top PEERS_SHOWN, summed. */
export interface OtherPeers {
  endpoints: number;
  tx_bytes: number;
  rx_bytes: number;
  tx_datagrams: number;
  rx_datagrams: number;
}

/** Whether the record is the close of an unconnected UDP socket: the one kind whose peers are in the map. */
export function isUnconnectedUdpClose(c: RecordCursor): boolean {
  return c.kind === Kind.Udp && c.udpEvent === UdpEventCode.Close && c.dport === 0;
}

export class ClosePeers {
  private bySock: Map<number, PeerRow[]> | undefined;

  /** `read` dumps the udp_peers map (Tracer.udpPeers). */
  constructor(private readonly read: () => Buffer) {}

  /** Forgets the last dump: call at each new batch. */
  nextBatch(): void {
    this.bySock = undefined;
  }

  /** Sets `peers` and `other_peers` on the close event of an unconnected UDP socket. */
  attach(e: UdpEvent): UdpEvent {
    if (!this.bySock) {
      this.bySock = new Map();
      let dump: Buffer;
      try {
        dump = this.read();
      } catch {
        return e; // the tracer stopped: the map went with it, so the last batch's closes go without peers
      }
      for (const p of decodePeers(dump)) {
        const list = this.bySock.get(p.sock);
        if (list) list.push(p);
        else this.bySock.set(p.sock, [p]);
      }
    }
    const rows = (this.bySock.get(e.sock) ?? []).sort((a, b) => b.tx_bytes + b.rx_bytes - (a.tx_bytes + a.rx_bytes));
    e.peers = rows.slice(0, PEERS_SHOWN).map(({ sock: _, ...p }) => p);
    const rest = rows.slice(PEERS_SHOWN);
    e.other_peers = rest.length
      ? rest.reduce(
          (o, p) => ({
            endpoints: o.endpoints + 1,
            tx_bytes: o.tx_bytes + p.tx_bytes,
            rx_bytes: o.rx_bytes + p.rx_bytes,
            tx_datagrams: o.tx_datagrams + p.tx_datagrams,
            rx_datagrams: o.rx_datagrams + p.rx_datagrams,
          }),
          { endpoints: 0, tx_bytes: 0, rx_bytes: 0, tx_datagrams: 0, rx_datagrams: 0 },
        )
      : null;
    return e;
  }
}
