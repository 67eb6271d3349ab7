// Which shared memory objects belong to the test suite, and which of them a run left
// behind. Other programs on the machine (a browser, a database, another user's session)
// create and remove objects in /dev/shm all the time, so the suite judges only its own:
// names that start with SUITE_PREFIX.
//
// Every object the suite makes has that prefix: test names come from helpers.js
// `uniqueName` ("/cshm-test-<run>-…"), the examples use "/cshm-example-…" and "/cshm-ex04…",
// the docs' snippets "/cshm-docs-…", and the library names anonymous objects
// "/cshm-anon-…" for the instant before it unlinks them. A test that needs another name
// must remove it itself: the leak check cannot see it.
//
// Several runs of the suite may share a machine (two checkouts, parallel CI jobs): each
// run has an id, RUN_ID, that test names carry ("/cshm-test-<run>-…"), and a run ignores
// names that carry another run's id. Names without one (the examples', the docs', anonymous
// ones) count for every run.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';

/** Where Linux keeps shared memory objects as files (absent on macOS: nothing to check there). */
export const SHM_DIR = '/dev/shm';

/** The first characters (after the '/') of every object name the suite creates. */
export const SUITE_PREFIX = 'cshm-';

/**
 * This run's id: six hex digits, chosen by test/run.js and handed to every process of the
 * run through CSHM_TEST_RUN (a test file started alone picks its own).
 */
export const RUN_ID = /^[0-9a-f]{6}$/.test(process.env.CSHM_TEST_RUN ?? '') ? process.env.CSHM_TEST_RUN : (process.env.CSHM_TEST_RUN = randomBytes(3).toString('hex'));

const RUN_OF_NAME = new RegExp(`^${SUITE_PREFIX}test-([0-9a-f]{6})-`);

/**
 * `true` for a directory entry (no leading '/') or object name ('/…') of the suite that
 * is not another run's (see RUN_ID).
 */
export function isSuiteObject(name, run = RUN_ID) {
  const entry = name.startsWith('/') ? name.slice(1) : name;
  if (!entry.startsWith(SUITE_PREFIX)) return false;
  const owner = RUN_OF_NAME.exec(entry)?.[1];
  return owner === undefined || owner === run;
}

/** The suite's objects among `entries` (a listing of SHM_DIR), sorted. */
export function suiteObjects(entries, run = RUN_ID) {
  return entries.filter((e) => isSuiteObject(e, run)).sort();
}

/** The suite's objects in `dir` now, sorted; none when the directory does not exist. */
export function listSuiteObjects(dir = SHM_DIR, run = RUN_ID) {
  return existsSync(dir) ? suiteObjects(readdirSync(dir), run) : [];
}

/**
 * What changed among the suite's objects between two listings (both full listings of
 * SHM_DIR, or already filtered): `added` were created and not removed (a leak, at the end
 * of a run), `removed` were there before and are gone. Everything else is ignored.
 */
export function suiteChanges(before, after, run = RUN_ID) {
  const was = new Set(suiteObjects([...before], run));
  const now = new Set(suiteObjects([...after], run));
  return {
    added: [...now].filter((n) => !was.has(n)).sort(),
    removed: [...was].filter((n) => !now.has(n)).sort(),
  };
}
