/**
 * How shared memory behaves on each OS, as data. The rest of the library asks these
 * rules instead of testing the platform, so tests can exercise macOS behaviour on
 * Linux by passing {@link MACOS_RULES} where a `rules` option is accepted.
 * @module
 */
import { platform } from './sys/libc.js';

/** The behaviour of POSIX shared memory on one OS. */
export interface OsRules {
  /** Name of the OS these rules describe, for messages. */
  readonly os: string;
  /** `ftruncate` works only once per object (macOS); a later size change is refused before the call. */
  readonly sizeSetOnce: boolean;
  /** A size set is rounded up to a multiple of the page size (macOS); `size` reports the rounded value. */
  readonly sizeRoundsToPage: boolean;
  /** `mmap` past the object's end fails with `EINVAL` (macOS) instead of succeeding and crashing with SIGBUS on access (Linux). */
  readonly mapPastEndFails: boolean;
  /** Longest accepted name, counting the leading slash (`PSHMNAMLEN` is 31 on macOS; Linux allows `NAME_MAX` = 255 after the slash). */
  readonly maxNameLength: number;
  /** The memory of a new size can be reserved at once with `posix_fallocate`, so a later write cannot die of SIGBUS when the file system is full. */
  readonly canReserve: boolean;
  /** Where named objects can be seen as files, or `null` where they cannot. */
  readonly namespaceDir: string | null;
}

/** Linux: `size=` any number of times, exact sizes, mapping past the end succeeds (and accesses there raise SIGBUS). */
export const LINUX_RULES: OsRules = Object.freeze({
  os: 'Linux',
  sizeSetOnce: false,
  sizeRoundsToPage: false,
  mapPastEndFails: false,
  maxNameLength: 256,
  canReserve: true,
  namespaceDir: '/dev/shm',
});

/** macOS: `size=` only once, rounded up to the page size; mapping past the end fails with EINVAL. */
export const MACOS_RULES: OsRules = Object.freeze({
  os: 'macOS',
  sizeSetOnce: true,
  sizeRoundsToPage: true,
  mapPastEndFails: true,
  maxNameLength: 31,
  canReserve: false,
  namespaceDir: null,
});

/** The rules of the OS this process runs on. */
export const currentRules: OsRules = platform === 'linux' ? LINUX_RULES : MACOS_RULES;
