import { readdirSync, readFileSync } from "node:fs";

/** The pids of `rootPid` and all its descendants, from /proc (Linux). */
export function processTree(rootPid: number): number[] {
  const children = childrenByParent();
  const tree: number[] = [];
  const visit = (pid: number) => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(rootPid);
  return tree;
}

/** One pass over /proc: each process's children. */
function childrenByParent(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parens.
      const stat = readFileSync(/*turbopackIgnore: true*/ `/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // the process ended while we looked
    }
  }
  return children;
}

/**
 * The memory one process really costs, in bytes: its proportional set size (PSS, from
 * /proc/<pid>/smaps_rollup), where pages shared with other processes count in part.
 * Chromium's processes share most of their pages, so their RSS summed would count the
 * same memory many times. Falls back to RSS where smaps_rollup is missing; 0 when the
 * process is gone.
 */
export function processMemoryBytes(pid: number): number {
  for (const [file, field] of [
    [`/proc/${pid}/smaps_rollup`, "Pss"],
    [`/proc/${pid}/status`, "VmRSS"],
  ] as const) {
    try {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(/*turbopackIgnore: true*/ file, "utf8"));
      if (match) return Number(match[1]) * 1024;
    } catch {
      // try the next source
    }
  }
  return 0;
}

/** The memory of some processes and all their descendants, in bytes (see processMemoryBytes). */
export function processTreesMemoryBytes(rootPids: number[]): number {
  if (rootPids.length === 0) return 0;
  const children = childrenByParent(); // one /proc scan for all roots
  let total = 0;
  const visit = (pid: number) => {
    total += processMemoryBytes(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  for (const pid of rootPids) visit(pid);
  return total;
}
