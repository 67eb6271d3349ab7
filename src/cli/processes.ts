/**
 * Which processes use which shared memory objects. Linux only: every `/proc/<pid>/maps`
 * line of a file under /dev/shm is a mapping, every `/proc/<pid>/fd/*` link to one an open
 * descriptor. Objects are matched by inode, so an unlinked object whose name was reused
 * is not mistaken for the new one. Other OSes expose neither: the answer is "unknown".
 * @internal
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** A process using an object. */
export interface ProcessUse {
  pid: number;
  /** Its command name (`/proc/<pid>/comm`), or `null` if unreadable. */
  command: string | null;
  /** It has part of the object mapped. */
  mapped: boolean;
  /** It holds a descriptor of the object. */
  open: boolean;
}

/** Users of every object in the namespace directory, by inode. */
export interface UsageScan {
  /** Processes using each object, by the object's inode number. */
  byInode: Map<number, ProcessUse[]>;
  /** Processes whose maps or descriptors could not be read (other users' processes, without root). */
  unreadable: number[];
}

/** Scans `/proc` for processes that map or hold open files of `dir` (other than this process). */
export function scanUsage(dir: string): UsageScan {
  const byInode = new Map<number, ProcessUse[]>();
  const unreadable: number[] = [];
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return { byInode, unreadable };
  }
  for (const pid of pids) {
    const uses = new Map<number, ProcessUse>();
    const use = (ino: number): ProcessUse => {
      let u = uses.get(ino);
      if (u === undefined) uses.set(ino, (u = { pid, command: null, mapped: false, open: false }));
      return u;
    };
    let denied = false;
    // Mappings: "address perms offset dev inode path".
    try {
      for (const line of readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n')) {
        const m = /^\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(.*)$/.exec(line);
        if (m !== null && m[2]!.startsWith(prefix)) use(Number(m[1])).mapped = true;
      }
    } catch (err) {
      if (isDenied(err)) denied = true;
      else continue; // the process exited
    }
    // Descriptors.
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (!readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(prefix)) continue;
          use(statSync(`/proc/${pid}/fd/${fd}`).ino).open = true;
        } catch {
          // closed meanwhile
        }
      }
    } catch (err) {
      if (isDenied(err)) denied = true;
    }
    if (denied) unreadable.push(pid);
    if (uses.size === 0) continue;
    let command: string | null = null;
    try {
      command = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // exited meanwhile
    }
    for (const [ino, u] of uses) {
      u.command = command;
      const list = byInode.get(ino);
      if (list === undefined) byInode.set(ino, [u]);
      else list.push(u);
    }
  }
  return { byInode, unreadable };
}

function isDenied(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
}

/** "1234 (node), 1240 (node, open only)". */
export function formatUses(uses: readonly ProcessUse[]): string {
  return uses.map((u) => `${u.pid} (${u.command ?? '?'}${u.mapped ? '' : ', open only'})`).join(', ');
}

/** "process 1" / "processes 1, 7, 9" / "12 processes": the ones a scan could not read. */
export function describeUnreadable(pids: readonly number[]): string {
  if (pids.length === 1) return `process ${pids[0]}`;
  if (pids.length <= 5) return `processes ${pids.join(', ')}`;
  return `${pids.length} processes`;
}
