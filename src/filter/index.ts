/**
 * ss(8)-style filters: parse the text once, compile it to a predicate, and
 * ask what of it the kernel could check early.
 *
 *   const ast = parseFilter("state established and ( dport = :443 or dport = :80 )");
 *   cursor.filter = cursorFilter(compile(ast));
 *   kernelHints(ast); // { dports: [80, 443] }
 */
export { parseFilter } from './parse';
export { compile } from './compile';
export type { FilterPredicate } from './compile';
export { kernelHints } from './hints';
export type { KernelHints } from './hints';
export { FilterSyntaxError } from './error';
export { subjectOf } from './subject';
export type { FilterSubject, SubjectFields } from './subject';
export { cursorFilter, CursorSubject } from './cursor';
export type { FilterableCursor } from './cursor';
export type * from './ast';
