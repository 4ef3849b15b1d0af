#!/usr/bin/env python3
"""stack_depth.py - the deepest stack path from given functions, read from the call
graph gcc writes with -fcallgraph-info=su (a .ci file: nodes with their frame sizes,
edges for direct calls).

usage: stack_depth.py FILE.ci ROOT [ROOT...]

For each root prints its worst-case stack use in bytes (the frames along the deepest
chain of direct calls) and that chain. Calls the graph cannot follow are listed, not
counted: indirect calls (the transport, allocator and logger callbacks) and functions
outside the file (libc, whose frames the firmware's measured high-water mark
includes). A recursive call is reported as such (rsq has none)."""
import re
import sys


def load(path):
    frames, edges, names = {}, {}, {}
    node = re.compile(r'node: \{ title: "([^"]+)" label: "([^"\\]+)(?:\\n[^"]*?(\d+) bytes)?')
    edge = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for line in open(path):
        m = node.match(line)
        if m:
            title, label, size = m.groups()
            names[title] = label
            if size is not None:
                frames[title] = int(size)
            continue
        m = edge.match(line)
        if m:
            edges.setdefault(m.group(1), []).append(m.group(2))
    return frames, edges, names


def deepest(fn, frames, edges, memo, path, outside, recursive):
    if fn in memo:
        return memo[fn]
    if fn in path:
        recursive.add(fn)
        return 0, []
    if fn not in frames:
        outside.add(fn)
        return 0, []
    path.add(fn)
    best, chain = 0, []
    for callee in edges.get(fn, []):
        d, c = deepest(callee, frames, edges, memo, path, outside, recursive)
        if d > best:
            best, chain = d, c
    path.discard(fn)
    memo[fn] = (frames[fn] + best, [fn] + chain)
    return memo[fn]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    frames, edges, names = load(sys.argv[1])
    by_name = {names[t]: t for t in frames}
    memo, status = {}, 0
    for root in sys.argv[2:]:
        title = by_name.get(root)
        if title is None:
            print("%s: not in %s" % (root, sys.argv[1]), file=sys.stderr)
            status = 1
            continue
        outside, recursive = set(), set()
        total, chain = deepest(title, frames, edges, memo, set(), outside, recursive)
        print("  %-24s %5d bytes  %s" % (root, total, " > ".join("%s %d" % (names[t], frames[t]) for t in chain)))
        if recursive:
            print("  %-24s recursion through %s" % ("", ", ".join(sorted(names.get(t, t) for t in recursive))))
    sys.exit(status)


if __name__ == "__main__":
    main()
