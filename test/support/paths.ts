/** Where the tests find the repository, the built CLI and the built fixtures (this file runs from dist/test/support). */
import path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..', '..');
/** The fixtures the kernel tests run as processes of their own, built next to the tests. */
export const FIXTURES = path.join(__dirname, '..', 'kernel', 'fixtures');
export const CLI = path.join(ROOT, 'bin', 'nettrace.js');
