/**
 * The parsed form of a filter. Sides follow ss: src is the socket's local
 * end, dst its remote end. `src 10.0.0.1:80` and `sport != :22` are already
 * broken down into these nodes, so consumers see one shape per question.
 */
export type Side = 'src' | 'dst';
export type PortOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

/**
 * An address prefix with its host bits zeroed. IPv4-mapped IPv6 prefixes are
 * stored as IPv4 because nettrace reports those sockets as family 4.
 */
export interface Prefix {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/** Matches everything: an empty filter, or `src *`. */
export interface TrueNode {
  readonly type: 'true';
}
export interface AndNode {
  readonly type: 'and';
  readonly left: FilterNode;
  readonly right: FilterNode;
}
export interface OrNode {
  readonly type: 'or';
  readonly left: FilterNode;
  readonly right: FilterNode;
}
export interface NotNode {
  readonly type: 'not';
  readonly operand: FilterNode;
}
/** Bit n set: kernel TCP state n (src/tcp.ts TCP_STATES) matches. */
export interface StateNode {
  readonly type: 'state';
  readonly mask: number;
}
export interface PortNode {
  readonly type: 'port';
  readonly side: Side;
  readonly op: PortOp;
  readonly port: number;
}
export interface AddrNode {
  readonly type: 'addr';
  readonly side: Side;
  readonly prefix: Prefix;
}
export interface PidNode {
  readonly type: 'pid';
  readonly pid: number;
}
export interface CommNode {
  readonly type: 'comm';
  readonly comm: string;
}
export interface CgroupNode {
  readonly type: 'cgroup';
  readonly cgroup: number;
}
export interface ProtoNode {
  readonly type: 'proto';
  readonly proto: 'tcp' | 'udp';
}

export type FilterNode =
  | TrueNode
  | AndNode
  | OrNode
  | NotNode
  | StateNode
  | PortNode
  | AddrNode
  | PidNode
  | CommNode
  | CgroupNode
  | ProtoNode;
