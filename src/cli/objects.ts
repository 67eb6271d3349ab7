/**
 * The shared memory objects of this machine, as the command shows them: name, size,
 * owner, permissions, age, and (when present) the structure of this library inside.
 * @internal
 */
import { currentRules } from '../os-rules.js';
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { probe, type Probe, type Structure } from './probe.js';
import { describeUnreadable, type ProcessUse, type UsageScan } from './processes.js';
import { openFileSource, openMappedSource, type ByteSource } from './source.js';

/** One object, as `ls --json` prints it. */
export interface ObjectReport {
  /** `/name`, as given to `shm_open`. */
  name: string;
  /** Its file, where the OS shows one (`/dev/shm/name`), else `null`. */
  path: string | null;
  size: number;
  uid: number;
  /** User name, or the uid as a string when it has none. */
  owner: string;
  /** Permission bits as `ls -l` shows them (`rw-------`) and in octal (`600`). */
  permissions: string;
  mode: string;
  /** When it was created (birth time where the file system keeps it, else the last status change) and how long ago, in ms. */
  created: string;
  ageMs: number;
  inode: number;
  /** The structure at the offset looked at, or `null` (see `note`). */
  structure: Structure | null;
  /** Why there is no structure, or why it could not be read. */
  note: string | null;
  /** Processes mapping it or holding it open; `null` when this OS does not tell. */
  processes: ProcessUse[] | null;
}

/** Where objects live as files on this OS (Linux: /dev/shm), or `null`. */
export function namespaceDir(): string | null {
  if (process.env.CONCURRENT_SHM_CLI_READER === 'map') return null; // tests: take the non-Linux path
  return currentRules.namespaceDir;
}

/** "Linux", "macOS", or Node's platform name. */
export function osName(): string {
  return process.platform === 'linux' ? 'Linux' : process.platform === 'darwin' ? 'macOS' : process.platform;
}

/** Names of the objects in `dir` (regular files only), sorted. */
export function listNames(dir: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile()) names.push(`/${entry.name}`);
  }
  return names.sort();
}

let users: Map<number, string> | undefined;

/** The user name of `uid` from /etc/passwd, or the uid as a string. */
export function userName(uid: number): string {
  if (users === undefined) {
    users = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':');
        if (name && id && /^\d+$/.test(id) && !users.has(Number(id))) users.set(Number(id), name);
      }
    } catch {
      // no passwd file: numbers only
    }
  }
  return users.get(uid) ?? String(uid);
}

/** `rwxr-x---` from a mode. */
export function permissionString(mode: number): string {
  const bits = 'rwxrwxrwx';
  let s = '';
  for (let i = 0; i < 9; i++) s += mode & (0o400 >> i) ? bits[i] : '-';
  return s;
}

/** Opens an object for reading: its file where there is one, else through the library. */
export async function openSource(name: string): Promise<ByteSource> {
  const dir = namespaceDir();
  return dir !== null ? openFileSource(dir, name) : openMappedSource(name);
}

/** A report on `name`. Errors of opening (not found, permission) are thrown; nothing else is. */
export async function reportObject(name: string, offset: number, scan: UsageScan | null): Promise<ObjectReport> {
  const dir = namespaceDir();
  const src = await openSource(name);
  try {
    const st = src.stat();
    let p: Probe;
    try {
      p = probe(src, st.size, offset);
    } catch (err) {
      p = { found: false, reason: `cannot read it: ${(err as Error).message}` };
    }
    return build(name, dir, st, p, scan);
  } finally {
    src.close();
  }
}

/** Like {@link reportObject}, but an object that cannot be opened gives a report with a `note` instead of an error. */
export async function reportObjectSafely(name: string, offset: number, scan: UsageScan | null): Promise<ObjectReport | null> {
  try {
    return await reportObject(name, offset, scan);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return null; // removed since it was listed
    const dir = namespaceDir();
    let st: Stats | null = null;
    try {
      if (dir !== null) st = lstatSync(join(dir, name.slice(1)));
    } catch {
      return null;
    }
    const why = e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.message;
    return st === null ? null : build(name, dir, st, { found: false, reason: `cannot read it: ${why}` }, scan);
  }
}

function build(name: string, dir: string | null, st: Stats, p: Probe, scan: UsageScan | null): ObjectReport {
  const createdMs = st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs;
  return {
    name,
    path: dir === null ? null : join(dir, name.slice(1)),
    size: st.size,
    uid: st.uid,
    owner: userName(st.uid),
    permissions: permissionString(st.mode),
    mode: (st.mode & 0o777).toString(8).padStart(3, '0'),
    created: new Date(createdMs).toISOString(),
    ageMs: Math.max(0, Math.round(Date.now() - createdMs)),
    inode: st.ino,
    structure: p.found ? p.structure : null,
    note: p.found ? null : p.reason,
    processes: scan === null ? null : (scan.byInode.get(st.ino) ?? []),
  };
}

/** Whether users other than this one may open the object: it is theirs, or open to group or others (mode bits `077`). */
export function sharedWithOthers(r: ObjectReport): boolean {
  return (parseInt(r.mode, 8) & 0o077) !== 0 || r.uid !== process.getuid?.();
}

/**
 * Whether an object counts as stale for `rm --stale`: it holds a structure of this
 * library, and no live process maps it or holds it open. When some processes could not
 * be inspected (not root), an object that other users may open is never stale.
 */
export function staleness(r: ObjectReport, scan: UsageScan | null): { stale: boolean; why: string } {
  if (r.structure === null) return { stale: false, why: `not a structure of this library (${r.note})` };
  if (r.processes === null || scan === null) return { stale: false, why: 'this OS does not tell which processes use it' };
  if (r.processes.length > 0) return { stale: false, why: `in use by ${r.processes.map((u) => u.pid).join(', ')}` };
  if (scan.unreadable.length > 0 && sharedWithOthers(r)) {
    return { stale: false, why: `${describeUnreadable(scan.unreadable)} could not be inspected, and other users may have it open` };
  }
  return { stale: true, why: 'no live process maps it or holds it open' };
}
