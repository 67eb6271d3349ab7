import { fork as forkProcess, type ChildProcess, type ForkOptions, type StdioOptions } from 'node:child_process';
import { fstatSync, ftruncateSync, readFileSync, type Stats } from 'node:fs';
import { InvalidArgumentError, ShmClosedError, SizeAlreadySetError, SizeInUseError } from '../errors.js';
import { currentRules, type OsRules } from '../os-rules.js';
import * as sys from '../sys/libc.js';
import { fromNodeError, systemError } from '../system-error.js';
import { checkChoice, checkIndex, checkOptions, describe } from '../validate.js';
import { anonymousName, checkName } from './name.js';
import { heldRanges } from './registry.js';

/**
 * How {@link SharedMemory.open} treats the name:
 * - `'excl'` (default): create the object; fail with `ShmExistsError` if it exists.
 * - `'create'`: open the object, creating it if needed.
 * - `'open'`: open an existing object; fail with `ShmNotFoundError` if there is none.
 * - `'anon'`: create the object and unlink its name at once, so only this process's
 *   descriptor (and the children it hands it to with {@link SharedMemory.fork}) reach it.
 */
export type OpenMode = 'excl' | 'create' | 'open' | 'anon';

const MODES: readonly OpenMode[] = ['excl', 'create', 'open', 'anon'];

/** Options of {@link SharedMemory.open}. */
export interface OpenOptions {
  /** How to treat the name; see {@link OpenMode}. Default `'excl'`. */
  mode?: OpenMode;
  /**
   * The OS rules to apply (advanced: for tests and teaching). Default: this OS's rules.
   * Passing `MACOS_RULES` on Linux makes the object behave as on macOS where the
   * library can enforce it (size set once, rounded to the page size; no mapping past the end).
   */
  rules?: OsRules;
}

/** Options of {@link SharedMemory.setSize}. */
export interface SetSizeOptions {
  /**
   * Reserve the memory of the new size at once (Linux, `posix_fallocate`), so that a
   * later write cannot die of SIGBUS because /dev/shm filled up in between. Default
   * `true`. With `false` the object is sparse: pages take memory when first written.
   */
  reserve?: boolean;
}

/** Environment variable through which {@link SharedMemory.fork} tells the child which descriptors it inherits. */
export const INHERIT_ENV = 'CONCURRENT_SHM_INHERITED';

interface InheritedEntry {
  fd: number;
  name: string;
  anonymous: boolean;
  /** Identity of the object ("dev:ino"), checked in the child before the descriptor is adopted. */
  key: string;
}

// Closes the descriptor of a SharedMemory that was collected without close().
const descriptors = new FinalizationRegistry<number>((fd) => {
  sys.close(fd); // EBADF if someone else closed it already: nothing to release
});

// What this process inherited through shm.fork(), read once at the first call: the
// variable is removed from the environment then, so that grandchildren started with a
// plain fork() do not believe they inherited descriptors they do not have.
let inheritedEntries: InheritedEntry[] | undefined;
const inheritedTaken = new Map<number, SharedMemory>();

function readInherited(): InheritedEntry[] {
  if (inheritedEntries !== undefined) return inheritedEntries;
  const raw = process.env[INHERIT_ENV];
  delete process.env[INHERIT_ENV];
  if (raw === undefined) return (inheritedEntries = []);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed)) {
    inheritedEntries = [];
    throw new InvalidArgumentError(`${INHERIT_ENV} is not valid JSON: ${describe(raw)}`);
  }
  return (inheritedEntries = parsed as InheritedEntry[]);
}

/**
 * A POSIX shared memory object (`shm_open`): a named piece of memory that any process on
 * the machine can open, size and map.
 *
 * ```js
 * const shm = SharedMemory.open('/jobs', 0o600, { mode: 'create' });
 * shm.size = 4096;
 * const region = Region.map(shm, 0, 4096);
 * shm.close(); // mappings stay valid after close
 * ```
 *
 * The descriptor is closed by {@link SharedMemory.close}, or when the object is garbage
 * collected. The name stays in the system until {@link SharedMemory.unlink} (or a reboot).
 */
export class SharedMemory implements Disposable {
  #fd: number;
  #name: string;
  #anonymous: boolean;
  #rules: OsRules;
  #sizeSet = false;
  #key: string | undefined;

  private constructor(fd: number, name: string, anonymous: boolean, rules: OsRules) {
    this.#fd = fd;
    this.#name = name;
    this.#anonymous = anonymous;
    this.#rules = rules;
    descriptors.register(this, fd, this);
  }

  /**
   * Opens or creates a shared memory object.
   *
   * @param name - `'/name'`: a leading slash and no other (`'/jobs'`). Optional with
   *   `mode: 'anon'`, where a unique name is generated.
   * @param perms - Permission bits of a created object, such as `0o600` (the umask applies).
   * @param options - `mode` ({@link OpenMode}, default `'excl'`) and `rules`.
   * @throws {@link InvalidArgumentError} for a bad name, permission or mode, or an unknown option key (before any system call).
   * @throws {@link ShmExistsError}, {@link ShmNotFoundError}, {@link ShmPermissionError} or {@link ShmSystemError} when `shm_open` fails.
   */
  static open(name?: string | null, perms: number = 0o600, options?: OpenOptions): SharedMemory {
    const opts = checkOptions<OpenOptions>('options', options, ['mode', 'rules']);
    const mode = checkChoice('options.mode', opts.mode ?? 'excl', MODES);
    const rules = opts.rules ?? currentRules;
    if (typeof perms !== 'number' || !Number.isInteger(perms) || perms < 0 || perms > 0o777) {
      throw new InvalidArgumentError(`permissions must be an integer from 0 to 0o777 (such as 0o600), got ${describe(perms)}`);
    }
    const anonymous = mode === 'anon';
    const shmName = anonymous && (name === undefined || name === null) ? anonymousName() : checkName(name, rules);

    const { O_RDWR, O_CREAT, O_EXCL } = sys.C;
    const flags = mode === 'open' ? O_RDWR : mode === 'create' ? O_RDWR | O_CREAT : O_RDWR | O_CREAT | O_EXCL;
    const fd = sys.shm_open(shmName, flags, perms);
    if (fd < 0) throw systemError(anonymous ? 'create anonymous shared memory' : 'open shared memory', 'shm_open', sys.errno(), shmName);
    if (anonymous && sys.shm_unlink(shmName) !== 0) {
      const errno = sys.errno();
      sys.close(fd);
      throw systemError('unlink anonymous shared memory', 'shm_unlink', errno, shmName);
    }
    return new SharedMemory(fd, shmName, anonymous, rules);
  }

  /**
   * Removes a name from the system (`shm_unlink`). Processes that have the object open
   * or mapped keep it; it is freed when the last of them lets go.
   * @throws {@link ShmNotFoundError} when no object has that name.
   */
  static delete(name: string): void {
    const shmName = checkName(name, currentRules);
    if (sys.shm_unlink(shmName) !== 0) throw systemError('delete shared memory', 'shm_unlink', sys.errno(), shmName);
  }

  /**
   * Adopts a descriptor of a shared memory object, such as one handed over by a parent
   * process. The returned object owns the descriptor: `close()` closes it.
   * @param fd - An open descriptor of a shared memory object (or a regular file).
   * @param name - The object's name, for messages and {@link SharedMemory.unlink}.
   */
  static fromFd(fd: number, name?: string, options?: Pick<OpenOptions, 'rules'>): SharedMemory {
    checkIndex('fd', fd);
    const rules = checkOptions<OpenOptions>('options', options, ['rules']).rules ?? currentRules;
    const shmName = name === undefined ? `fd:${fd}` : checkName(name, rules);
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw fromNodeError('adopt descriptor', err, shmName);
    }
    // Linux reports shared memory objects as regular files; macOS does not say, so there
    // only the kinds that are certainly not shared memory are refused.
    const mappable = sys.platform === 'linux' ? st.isFile() : !(st.isDirectory() || st.isFIFO() || st.isSocket() || st.isCharacterDevice() || st.isBlockDevice());
    if (!mappable) {
      throw new InvalidArgumentError(`descriptor ${fd} is not a shared memory object and cannot be mapped`);
    }
    return new SharedMemory(fd, shmName, name === undefined, rules);
  }

  /**
   * The shared memory object this process inherited from a parent that started it with
   * {@link SharedMemory.fork}. Calling it again returns the same object while it is open.
   * @param name - Which inherited object, when the parent handed over several; default the first.
   * @throws {@link InvalidArgumentError} when this process inherited none (it was not started by `shm.fork()`).
   */
  static inherited(name?: string): SharedMemory {
    const entries = readInherited();
    if (entries.length === 0) {
      throw new InvalidArgumentError('this process inherited no shared memory: start it with shm.fork(modulePath) in the parent');
    }
    const entry = name === undefined ? entries[0] : entries.find((e) => e.name === name);
    if (entry === undefined) {
      throw new InvalidArgumentError(`this process inherited no shared memory named ${describe(name)}`);
    }
    const taken = inheritedTaken.get(entry.fd);
    if (taken !== undefined) {
      if (taken.closed) throw new ShmClosedError(`the inherited shared memory '${entry.name}' was closed; its descriptor is gone`);
      return taken;
    }
    // The descriptor number must still hold the object the parent handed over.
    let st: Stats;
    try {
      st = fstatSync(entry.fd);
    } catch {
      throw new InvalidArgumentError(`the inherited descriptor ${entry.fd} of '${entry.name}' is not open in this process`);
    }
    if (`${st.dev}:${st.ino}` !== entry.key) {
      throw new InvalidArgumentError(`descriptor ${entry.fd} is not the shared memory '${entry.name}' the parent handed over (it was replaced)`);
    }
    const shm = SharedMemory.fromFd(entry.fd);
    shm.#name = entry.name;
    shm.#anonymous = entry.anonymous;
    inheritedTaken.set(entry.fd, shm);
    return shm;
  }

  /** The object's name (generated for anonymous objects, whose name no longer exists in the system). */
  get name(): string {
    return this.#name;
  }

  /** The open descriptor. Throws {@link ShmClosedError} after `close()`. */
  get fd(): number {
    return this.#checkOpen('read the descriptor of');
  }

  /** `true` when the name was unlinked at creation (`mode: 'anon'`), or the object was adopted without a name. */
  get anonymous(): boolean {
    return this.#anonymous;
  }

  /** `true` after {@link SharedMemory.close}. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** The OS rules this object follows. */
  get rules(): OsRules {
    return this.#rules;
  }

  /** The object's size in bytes, read with `fstat` (so it sees changes made by other processes). */
  get size(): number {
    return this.stat().size;
  }

  /** Sets the size (`ftruncate`, then reserves the memory); see {@link SharedMemory.setSize}. */
  set size(size: number) {
    this.setSize(size);
  }

  /**
   * Sets the object's size with `ftruncate`. New bytes read as zero.
   *
   * On Linux the size is exact and may be set again; growing reserves the memory at once
   * (unless `reserve: false`) so a full /dev/shm fails here, not later with SIGBUS.
   * On macOS the size can be set only once and is rounded up to the page size.
   *
   * @throws {@link SizeAlreadySetError} on macOS rules when the size was already set (checked before the call).
   * @throws {@link SizeInUseError} when shrinking would cut off memory this process has mapped.
   * @throws {@link ShmNoSpaceError} when the memory cannot be reserved; the size is left as it was.
   */
  setSize(size: number, options?: SetSizeOptions): void {
    checkIndex('size', size);
    const reserve = checkOptions<SetSizeOptions>('options', options, ['reserve']).reserve ?? true;
    const fd = this.#checkOpen('set the size of');
    const rules = this.#rules;
    const before = this.stat().size;
    if (rules.sizeSetOnce && (this.#sizeSet || before > 0)) {
      throw new SizeAlreadySetError(
        `cannot set the size of shared memory '${this.#name}' to ${size}: on ${rules.os} the size of an object can be set only once, and it is ${before}`,
      );
    }
    const target = rules.sizeRoundsToPage ? Math.ceil(size / pageSize) * pageSize : size;
    if (target < before) this.#checkShrink(target);
    if (reserve && rules.canReserve && target > before && sys.posix_fallocate !== null) {
      // Grow and reserve in one call: posix_fallocate extends the size only if needed,
      // never shrinks it (another process may have grown it meanwhile), and leaves it as
      // it was when the memory cannot be had.
      const err = sys.posix_fallocate(fd, 0, target);
      if (err !== 0) throw systemError(`reserve ${target} bytes for shared memory`, 'posix_fallocate', err, this.#name);
    } else {
      try {
        ftruncateSync(fd, target);
      } catch (err) {
        throw fromNodeError('set the size of shared memory', err, this.#name);
      }
    }
    this.#sizeSet = true;
  }

  /**
   * Makes the object at least `size` bytes long, never shorter, and safely so when
   * several processes do it at once (Linux: one `posix_fallocate`, which also reserves the
   * memory). Used by channels' `autosize`.
   * @internal
   */
  growTo(size: number): void {
    const fd = this.#checkOpen('grow');
    if (this.stat().size >= size) return;
    if (this.#rules.canReserve && sys.posix_fallocate !== null) {
      const err = sys.posix_fallocate(fd, 0, size);
      if (err !== 0) throw systemError(`grow shared memory to ${size} bytes`, 'posix_fallocate', err, this.#name);
      return;
    }
    this.setSize(size);
  }

  /**
   * Refuses a shrink that would cut off memory mapped in this process, by any thread
   * (Linux: from /proc/self/maps; elsewhere: from what this thread mapped).
   */
  #checkShrink(target: number): void {
    const refuse = (what: string): never => {
      throw new SizeInUseError(
        `cannot shrink shared memory '${this.#name}' to ${target} bytes: this process has ${what}; an access past the new end would crash with SIGBUS`,
      );
    };
    for (const r of heldRanges(this.key)) if (r.end > target) refuse(r.what);
    if (sys.platform !== 'linux') return;
    let maps: string;
    try {
      maps = readFileSync('/proc/self/maps', 'latin1');
    } catch {
      return;
    }
    const ino = String(this.stat().ino);
    // Mappings are whole pages; only pages wholly past the new end fault (the page that
    // holds the end reads zeros past it), so compare with the end rounded up to a page.
    const safeEnd = Math.ceil(target / pageSize) * pageSize;
    for (const line of maps.split('\n')) {
      // start-end perms offset dev inode path
      const f = line.split(/\s+/, 6);
      if (f.length < 6 || f[4] !== ino || !f[5]!.startsWith('/dev/shm/')) continue;
      const [lo, hi] = f[0]!.split('-').map((x) => parseInt(x, 16));
      const end = parseInt(f[2]!, 16) + (hi! - lo!);
      if (end > safeEnd) refuse(`a mapping (in some thread) up to byte ${end}`);
    }
  }

  /** `fstat` of the object: size, mode, owner, times. */
  stat(): Stats {
    const fd = this.#checkOpen('stat');
    try {
      return fstatSync(fd);
    } catch (err) {
      throw fromNodeError('stat shared memory', err, this.#name);
    }
  }

  /**
   * Identity of the object in this process ("dev:ino"), stable across handles.
   * @internal
   */
  get key(): string {
    if (this.#key === undefined) {
      const st = this.stat();
      this.#key = `${st.dev}:${st.ino}`;
    }
    return this.#key;
  }

  /**
   * Removes the object's name from the system (`shm_unlink`); see {@link SharedMemory.delete}.
   * Does nothing for an anonymous object, whose name is already gone.
   */
  unlink(): void {
    if (this.#anonymous) return;
    SharedMemory.delete(this.#name);
  }

  /**
   * Closes the descriptor. Idempotent. Regions mapped from the object stay valid
   * (POSIX keeps mappings after close), but the object can no longer be sized or mapped.
   */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    descriptors.unregister(this);
    if (sys.close(fd) !== 0) throw systemError('close shared memory', 'close', sys.errno(), this.#name);
  }

  /** Closes the descriptor (`using shm = SharedMemory.open(...)`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Starts `modulePath` in a child Node process (`child_process.fork`) and hands it this
   * object's descriptor, so anonymous objects work too. The child calls
   * {@link SharedMemory.inherited} to get it.
   *
   * @param modulePath - The child's script.
   * @param args - Its command-line arguments (may be left out: `fork(modulePath, options)`).
   * @param options - `child_process.fork` options, read as `fork` reads them. `stdio`: an
   *   array (missing streams are pipes, as in `spawn`; `'ipc'` is added when missing), or
   *   one of `'pipe'`, `'overlapped'`, `'inherit'`, `'ignore'` for all three streams;
   *   without it, a truthy `silent` pipes them. The descriptor is appended to the array.
   */
  fork(modulePath: string | URL, args?: readonly string[], options?: ForkOptions): ChildProcess;
  fork(modulePath: string | URL, options?: ForkOptions): ChildProcess;
  fork(modulePath: string | URL, argsOrOptions?: readonly string[] | ForkOptions, maybeOptions?: ForkOptions): ChildProcess {
    // As child_process.fork: an object in place of the arguments is the options.
    const takesOptions = argsOrOptions !== null && typeof argsOrOptions === 'object' && !Array.isArray(argsOrOptions);
    const args = takesOptions || argsOrOptions == null ? [] : (argsOrOptions as readonly string[]);
    const options = (takesOptions ? argsOrOptions : maybeOptions) ?? {};
    if (argsOrOptions != null && typeof argsOrOptions !== 'object') throw new InvalidArgumentError(`args must be an array of strings or the options, got ${describe(argsOrOptions)}`);
    if (typeof options !== 'object' || Array.isArray(options)) throw new InvalidArgumentError(`options must be an object, got ${describe(options)}`);
    const fd = this.#checkOpen('fork a child with');
    const stdio = stdioOf(options as ForkOptions);
    if (!stdio.includes('ipc')) stdio.push('ipc');
    const childFd = stdio.length;
    stdio.push(fd);
    const inherited: InheritedEntry[] = [{ fd: childFd, name: this.#name, anonymous: this.#anonymous, key: this.key }];
    return forkProcess(modulePath, args, {
      ...(options as ForkOptions),
      stdio,
      env: { ...((options as ForkOptions).env ?? process.env), [INHERIT_ENV]: JSON.stringify(inherited) },
    });
  }

  #checkOpen(what: string): number {
    if (this.#fd < 0) throw new ShmClosedError(`cannot ${what} shared memory '${this.#name}': it is closed`);
    return this.#fd;
  }
}

/** The stdio strings `child_process.fork` takes for all three streams. */
const STDIO_STRINGS: readonly string[] = ['pipe', 'overlapped', 'inherit', 'ignore'];

/**
 * `fork`'s stdio as a new array of at least the three standard streams, as
 * `child_process.fork` reads `stdio` and `silent` (`spawn` makes a missing stream a pipe).
 * Without the padding, a short array would put 'ipc' and the descriptor at a standard
 * stream's number: the child's stderr would be the shared memory object.
 */
function stdioOf(options: ForkOptions): Exclude<StdioOptions, string> {
  const stdio = options.stdio ?? (options.silent ? 'pipe' : 'inherit');
  if (Array.isArray(stdio)) {
    const all = [...stdio];
    while (all.length < 3) all.push('pipe');
    return all;
  }
  if (typeof stdio === 'string' && STDIO_STRINGS.includes(stdio)) return [stdio, stdio, stdio] as Exclude<StdioOptions, string>;
  throw new InvalidArgumentError(`options.stdio must be an array, 'pipe', 'overlapped', 'inherit' or 'ignore', got ${describe(stdio)}`);
}

/** The system's page size in bytes (the unit of mapping offsets; 4096 on most machines, 16384 on Apple silicon). */
export const pageSize: number = sys.sysconf(sys.C.SC_PAGESIZE);
