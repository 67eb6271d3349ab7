// Which shared memory objects belong to the test suite, and which of them a run left
// behind. Other programs on the machine (a browser, a database, another user's session)
// create and remove objects in /dev/shm all the time, so the suite judges only its own:
// names that start with SUITE_PREFIX.
//
// Every object the suite makes has that prefix: test names come from helpers.js
// `uniqueName` ("/cshm-test-…"), the examples use "/cshm-example-…" and "/cshm-ex04…",
// the docs' snippets "/cshm-docs-…", and the library names anonymous objects
// "/cshm-anon-…" for the instant before it unlinks them. A test that needs another name
// must remove it itself: the leak check cannot see it.
import { existsSync, readdirSync } from 'node:fs';

/** Where Linux keeps shared memory objects as files (absent on macOS: nothing to check there). */
export const SHM_DIR = '/dev/shm';

/** The first characters (after the '/') of every object name the suite creates. */
export const SUITE_PREFIX = 'cshm-';

/** `true` for a directory entry (no leading '/') or object name ('/…') of the suite. */
export function isSuiteObject(name) {
  return (name.startsWith('/') ? name.slice(1) : name).startsWith(SUITE_PREFIX);
}

/** The suite's objects among `entries` (a listing of SHM_DIR), sorted. */
export function suiteObjects(entries) {
  return entries.filter(isSuiteObject).sort();
}

/** The suite's objects in `dir` now, sorted; none when the directory does not exist. */
export function listSuiteObjects(dir = SHM_DIR) {
  return existsSync(dir) ? suiteObjects(readdirSync(dir)) : [];
}

/**
 * What changed among the suite's objects between two listings (both full listings of
 * SHM_DIR, or already filtered): `added` were created and not removed (a leak, at the end
 * of a run), `removed` were there before and are gone. Everything else is ignored.
 */
export function suiteChanges(before, after) {
  const was = new Set(suiteObjects([...before]));
  const now = new Set(suiteObjects([...after]));
  return {
    added: [...now].filter((n) => !was.has(n)).sort(),
    removed: [...was].filter((n) => !now.has(n)).sort(),
  };
}
