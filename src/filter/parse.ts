/**
 * The ss(8) filter grammar, plus nettrace's owner and protocol terms:
 *
 *   filter  := [or]
 *   or      := and (('or' | '||' | '|') and)*
 *   and     := unary (['and' | '&&' | '&'] unary)*      adjacent terms are and-ed, as in ss
 *   unary   := ('not' | '!') unary | primary
 *   primary := '(' or ')' | states | clause
 *   states  := (('state' | 'exclude' | 'excl') NAME)+
 *   clause  := ('sport' | 'dport') [cmp] PORT | ('src' | 'dst') [eq | ne] ENDPOINT
 *            | ('pid' | 'comm' | 'cgroup') [eq | ne] VALUE | 'tcp' | 'udp'
 *
 * ss gives and/or one precedence and groups left to right; here `not` binds
 * tighter than `and`, and `and` tighter than `or`, as in most languages, so
 * `a or b and c` is `a or (b and c)`.
 *
 * A run of adjacent state/exclude clauses is one term built as ss builds its
 * state set: starting empty after `state`, from every state after `exclude`,
 * then adding or removing each name in turn. So `state established state
 * syn-sent` is either of the two and `exclude time-wait` all but one, while
 * an explicit `state established and state syn-sent` matches nothing.
 *
 * The text is parsed once, here; compile.ts makes it a predicate, cursor.ts
 * applies that to raw records, and hints.ts says what of it the kernel can
 * check early:
 *
 *   const ast = parseFilter("state established and ( dport = :443 or dport = :80 )");
 *   cursor.filter = cursorFilter(compile(ast));
 *   kernelHints(ast); // { dports: [80, 443] }
 */
import { ADDRESS_EXPECTED, parseEndpoint } from './addr';
import { FilterNode, PortOp, Side } from './ast';
import { FilterSyntaxError } from './error';
import { lex, Token } from './lex';
import { Fail, parsePort, PORT_EXPECTED } from './port';
import { ALL_STATES, STATE_NAMES, stateMask } from './state-masks';

const TERM_EXPECTED = "a term (state, exclude, sport, dport, src, dst, pid, comm, cgroup, tcp, udp, not, '(')";
const MORE_EXPECTED = "'and', 'or' or another term";
const PID_EXPECTED = 'a process id like 1234';
const COMM_EXPECTED = 'a process name of 1 to 15 characters';
const CGROUP_EXPECTED = 'a numeric cgroup id like 1234';
// PID_MAX_LIMIT, as --pid takes it
const PID_MAX = 4194304;

const STATE_WORDS = new Set(['state', 'exclude', 'excl']);
const CLAUSE_WORDS = new Set([...STATE_WORDS, 'sport', 'dport', 'src', 'dst', 'pid', 'comm', 'cgroup', 'tcp', 'udp']);

const COMPARE = new Map<string, PortOp>([
  ['=', 'eq'],
  ['==', 'eq'],
  ['eq', 'eq'],
  ['!=', 'ne'],
  ['ne', 'ne'],
  ['neq', 'ne'],
  ['<', 'lt'],
  ['lt', 'lt'],
  ['<=', 'le'],
  ['le', 'le'],
  ['leq', 'le'],
  ['>', 'gt'],
  ['gt', 'gt'],
  ['>=', 'ge'],
  ['ge', 'ge'],
  ['geq', 'ge'],
]);

interface Compare {
  readonly token: Token;
  readonly op: PortOp;
}

const isValue = (t: Token): boolean => t.kind === 'word' || t.kind === 'quoted';

/** Keywords and word operators, in any case; quoted text is never one. */
function keyword(t: Token): string | null {
  return t.kind === 'word' ? t.text.toLowerCase() : null;
}

function isConnective(t: Token, ops: string[], word: string): boolean {
  return (t.kind === 'op' && ops.includes(t.text)) || keyword(t) === word;
}
const isOr = (t: Token): boolean => isConnective(t, ['||', '|'], 'or');
const isAnd = (t: Token): boolean => isConnective(t, ['&&', '&'], 'and');
const isNot = (t: Token): boolean => isConnective(t, ['!'], 'not');
const isOpen = (t: Token): boolean => t.kind === 'op' && t.text === '(';
const startsTerm = (t: Token): boolean => isNot(t) || isOpen(t) || CLAUSE_WORDS.has(keyword(t) ?? '');

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i];
  }
  private next(): Token {
    return this.tokens[this.i++];
  }

  private fail(expected: string, at: Token, after: Token | string | null = null): never {
    const context = typeof after === 'string' ? after : (after?.raw ?? null);
    throw new FilterSyntaxError(at.pos, expected, context, at.kind === 'end' ? null : at.raw);
  }

  /** Errors inside a value point at the bad piece; `after` is kept only when the whole value is bad. */
  private failIn(value: Token, after: string): Fail {
    const start = value.pos + (value.kind === 'quoted' ? 1 : 0);
    return (at, expected, found) => {
      throw new FilterSyntaxError(start + at, expected, found === value.text ? after : null, found);
    };
  }

  parse(): FilterNode {
    if (this.peek().kind === 'end') return { type: 'true' };
    const node = this.or(null);
    if (this.peek().kind !== 'end') this.fail(MORE_EXPECTED, this.peek());
    return node;
  }

  private or(after: Token | null): FilterNode {
    let left = this.and(after);
    while (isOr(this.peek())) {
      const op = this.next();
      left = { type: 'or', left, right: this.and(op) };
    }
    return left;
  }

  private and(after: Token | null): FilterNode {
    let left = this.unary(after);
    for (;;) {
      if (isAnd(this.peek())) {
        const op = this.next();
        left = { type: 'and', left, right: this.unary(op) };
      } else if (startsTerm(this.peek())) {
        left = { type: 'and', left, right: this.unary(null) };
      } else {
        return left;
      }
    }
  }

  private unary(after: Token | null): FilterNode {
    if (!isNot(this.peek())) return this.primary(after);
    const op = this.next();
    return { type: 'not', operand: this.unary(op) };
  }

  private primary(after: Token | null): FilterNode {
    const t = this.peek();
    if (isOpen(t)) {
      this.next();
      const inner = this.or(t);
      const close = this.peek();
      if (close.kind !== 'op' || close.text !== ')') {
        this.fail(close.kind === 'end' ? `')' to close the '(' at column ${t.pos + 1}` : `')', ${MORE_EXPECTED}`, close);
      }
      this.next();
      return inner;
    }
    const word = keyword(t);
    if (word === null || !CLAUSE_WORDS.has(word)) this.fail(TERM_EXPECTED, t, after);
    this.next();
    if (STATE_WORDS.has(word)) return this.states(t);
    switch (word) {
      case 'sport':
      case 'dport':
        return this.port(t, word === 'sport' ? 'src' : 'dst');
      case 'src':
      case 'dst':
        return this.endpoint(t, word);
      case 'pid':
        return this.owner(t, PID_EXPECTED, (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= PID_MAX ? { type: 'pid', pid: +v } : null));
      case 'cgroup':
        return this.owner(t, CGROUP_EXPECTED, (v) => (/^\d+$/.test(v) && +v <= Number.MAX_SAFE_INTEGER ? { type: 'cgroup', cgroup: +v } : null));
      case 'comm':
        // the kernel keeps 15 bytes, which nettrace reads as latin1
        return this.owner(t, COMM_EXPECTED, (v) => (/^[\x01-\xff]{1,15}$/.test(v) ? { type: 'comm', comm: v } : null));
      default:
        return { type: 'proto', proto: word === 'udp' ? 'udp' : 'tcp' };
    }
  }

  private states(first: Token): FilterNode {
    let mask = keyword(first) === 'state' ? 0 : ALL_STATES;
    for (let clause = first; ; clause = this.next()) {
      const name = this.peek();
      const bits = isValue(name) ? stateMask(name.text) : undefined;
      if (bits === undefined) this.fail(`a state name (${STATE_NAMES})`, name, clause);
      this.next();
      mask = keyword(clause) === 'state' ? mask | bits : mask & ~bits;
      if (!STATE_WORDS.has(keyword(this.peek()) ?? '')) return { type: 'state', mask };
    }
  }

  private compare(): Compare | null {
    const t = this.peek();
    const op = t.kind === 'op' || t.kind === 'word' ? COMPARE.get(t.text.toLowerCase()) : undefined;
    if (op === undefined) return null;
    this.next();
    return { token: t, op };
  }

  /** Unordered terms take an optional = or != ; anything like < is reported against the term. */
  private equality(term: Token, expected: string): { positive: boolean; after: string } {
    const cmp = this.compare();
    if (cmp && cmp.op !== 'eq' && cmp.op !== 'ne') this.fail(expected, cmp.token, term);
    return { positive: cmp?.op !== 'ne', after: cmp ? `${term.raw} ${cmp.token.raw}` : term.raw };
  }

  private value(expected: string, after: string): Token {
    const t = this.peek();
    if (!isValue(t)) this.fail(expected, t, after);
    return this.next();
  }

  private port(term: Token, side: Side): FilterNode {
    const cmp = this.compare();
    const after = cmp ? `${term.raw} ${cmp.token.raw}` : term.raw;
    const v = this.value(PORT_EXPECTED, after);
    return { type: 'port', side, op: cmp?.op ?? 'eq', port: parsePort(v.text, 0, this.failIn(v, after)) };
  }

  private endpoint(term: Token, side: Side): FilterNode {
    const { positive, after } = this.equality(term, ADDRESS_EXPECTED);
    const v = this.value(ADDRESS_EXPECTED, after);
    const { prefix, port } = parseEndpoint(v.text, this.failIn(v, after));
    const parts: FilterNode[] = [];
    if (prefix) parts.push({ type: 'addr', side, prefix });
    if (port !== null) parts.push({ type: 'port', side, op: 'eq', port });
    const node: FilterNode =
      parts.length === 0 ? { type: 'true' } : parts.length === 1 ? parts[0] : { type: 'and', left: parts[0], right: parts[1] };
    return positive ? node : { type: 'not', operand: node };
  }

  private owner(term: Token, expected: string, make: (v: string) => FilterNode | null): FilterNode {
    const { positive, after } = this.equality(term, expected);
    const v = this.value(expected, after);
    const node = make(v.text);
    if (!node) this.fail(expected, v, after);
    return positive ? node : { type: 'not', operand: node };
  }
}

/** Parses a filter as typed; an empty one matches everything. Throws FilterSyntaxError. */
export function parseFilter(text: string): FilterNode {
  return new Parser(lex(text)).parse();
}
