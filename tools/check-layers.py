#!/usr/bin/env python3
"""The floors of the tree, enforced (docs/architecture.md, "Floors").

1. Includes: every #include "..." of a source or header must resolve to a
   file of a room its own room may use (ROOMS below). So public headers
   include no private ones, nothing outside src/core reaches a core-internal
   header, formats see only the format authors' header, and so on.
2. No circles inside a room: the files of one folder, taken as units (x.c
   with x.h), must not depend on each other in a circle, where "A depends
   on B" means A includes B's header or A's object file references a symbol
   B's object file defines (read with nm from the build). A capture read
   from the public call down to the sink then only goes down.

usage: check-layers.py SOURCE_ROOT BUILD_ROOT
"""
import json
import os
import re
import subprocess
import sys

# room -> rooms whose files it may include. A room is a folder (path prefix,
# longest match wins); "file:" entries allow single files of another room.
PUBLIC = "include/livedump"
SYS = "include/livedump/sys"
ROOMS = {
    PUBLIC: [PUBLIC],
    SYS: [PUBLIC, SYS],
    # the freestanding engine: buffers, then formats, then the core
    "src/buffers": [PUBLIC, SYS, "src/buffers"],
    "src/formats": [PUBLIC, SYS, "src/formats"],
    "src/core": [PUBLIC, SYS, "src/core", "src/buffers", "file:src/formats/registry.h"],
    # user mode (src/common/win and src/runtime/win are the Win32 halves of
    # these rooms, for the Windows client: same room, same rules)
    "src/common": [PUBLIC, "src/common"],
    "src/runtime": [PUBLIC, SYS, "src/runtime", "src/common"],
    "src/reports": [PUBLIC, SYS, "src/reports", "src/common"],
    "src/reader": [PUBLIC, "src/reader", "src/common", "file:src/formats/dmp_layout.h"],
    "hal/sim": [PUBLIC, SYS, "hal/sim"],
    "hal/linux": [PUBLIC, SYS, "hal/linux", "src/common"],
    "hal/fault": [PUBLIC, SYS, "hal/fault"],
    "hal/nt": [PUBLIC, SYS, "hal/nt"],
    # programs: an embedder's view only
    "src/cli": [PUBLIC, "src/cli"],
    "examples": [PUBLIC],
    "bench": [PUBLIC, SYS],
}
# Folders whose files must not depend on each other in a circle.
ACYCLIC = ["src/buffers", "src/formats", "src/core", "src/common", "src/runtime", "src/reports",
           "src/reader", "hal/sim", "hal/linux", "hal/fault", "hal/nt", "src/cli"]

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room_of(rel):
    best = None
    for room in ROOMS:
        if rel == room or rel.startswith(room + "/"):
            if best is None or len(room) > len(best):
                best = room
    return best


def sources(root):
    out = []
    for top in ["include", "src", "hal", "examples", "bench"]:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h", ".h.in")):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def resolve(root, build, rel, name):
    """The file an include names: beside the includer, under include/ (or
    its generated twin in the build), then in the folders of the rooms the
    includer may use (the build puts those on its path), then anywhere in
    the tree (so a forbidden include is named, not just unresolved)."""
    def exists(cand):
        return os.path.isfile(os.path.join(root, cand)) or os.path.isfile(os.path.join(root, cand + ".in"))
    here = os.path.dirname(rel)
    for cand in [os.path.join(here, name), os.path.join("include", name)]:
        cand = os.path.normpath(cand)
        if exists(cand):
            return cand
    if os.path.isfile(os.path.join(build, "include", name)):
        return os.path.normpath(os.path.join("include", name))
    room = room_of(rel)
    allowed = [r[5:] if r.startswith("file:") else os.path.join(r, name) for r in ROOMS.get(room, [])]
    for cand in allowed:
        if os.path.basename(cand) == os.path.basename(name) and exists(cand):
            return os.path.normpath(cand)
    for other in sorted(ROOMS):
        cand = os.path.normpath(os.path.join(other, name))
        if exists(cand):
            return cand
    return None


def check_includes(root, build, files):
    errors = []
    graph = {}
    for rel in files:
        room = room_of(rel)
        if room is None:
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for name in INCLUDE_RE.findall(text):
            target = resolve(root, build, rel, name)
            if target is None:
                errors.append(f"{rel}: #include \"{name}\" names no file of the tree "
                              f"(beside it, or under include/)")
                continue
            troom = room_of(target)
            allowed = ROOMS[room]
            if troom not in allowed and f"file:{target}" not in allowed:
                errors.append(f"{rel} ({room}) includes {target} ({troom}): not a floor it may use")
            graph.setdefault(rel, set()).add(target)
    return errors, graph


def unit(rel):
    base = rel[:-3] if rel.endswith(".h.in") else os.path.splitext(rel)[0]
    return base


def compile_objects(build):
    """source path (relative to the source root) -> object file, from the
    build's compile_commands.json."""
    path = os.path.join(build, "compile_commands.json")
    objs = {}
    if not os.path.isfile(path):
        return objs
    with open(path) as fh:
        for entry in json.load(fh):
            src = os.path.normpath(os.path.join(entry["directory"], entry["file"]))
            out = entry.get("output")
            if not out:
                m = re.search(r"-o\s+(\S+)", entry.get("command", ""))
                out = m.group(1) if m else None
            if out:
                objs.setdefault(src, os.path.normpath(os.path.join(entry["directory"], out)))
    return objs


def nm_symbols(obj):
    res = subprocess.run(["nm", obj], capture_output=True, text=True, check=True)
    defined, undefined = set(), set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVWG" and parts[1].isupper():
            defined.add(parts[2])
    return defined, undefined


def find_circle(nodes, edges):
    """One circle of the graph as a list of nodes, or None."""
    color = {n: 0 for n in nodes}
    stack = []

    def visit(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if m not in color:
                continue
            if color[m] == 1:
                return stack[stack.index(m):] + [m]
            if color[m] == 0:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = 2
        return None

    for n in sorted(nodes):
        if color[n] == 0:
            found = visit(n)
            if found:
                return found
    return None


def check_circles(root, build, files, include_graph):
    errors = []
    objs = compile_objects(build)
    if not objs:
        errors.append(f"{build}: no compile_commands.json; cannot read the calls between files")
        return errors
    for room in ACYCLIC:
        members = [f for f in files if room_of(f) == room]
        if not members:
            continue
        nodes = {unit(f) for f in members}
        edges = {}
        why = {}
        for f in members:
            for t in include_graph.get(f, ()):
                if room_of(t) == room and unit(t) != unit(f):
                    edges.setdefault(unit(f), set()).add(unit(t))
                    why.setdefault((unit(f), unit(t)), f"includes {t}")
        defs, undefs = {}, {}
        for f in members:
            if not f.endswith(".c"):
                continue
            obj = objs.get(os.path.normpath(os.path.join(root, f)))
            if obj and os.path.isfile(obj):
                defs[unit(f)], undefs[unit(f)] = nm_symbols(obj)
        owner = {}
        for u, ds in defs.items():
            for s in ds:
                owner.setdefault(s, u)
        for u, us in undefs.items():
            for s in us:
                o = owner.get(s)
                if o and o != u:
                    edges.setdefault(u, set()).add(o)
                    why.setdefault((u, o), f"calls {s}")
        circle = find_circle(nodes, edges)
        if circle:
            steps = [f"{a} -> {b} ({why.get((a, b), '?')})" for a, b in zip(circle, circle[1:])]
            errors.append(f"{room}: files depend on each other in a circle:\n    " + "\n    ".join(steps))
    return errors


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root, build = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    files = sources(root)
    errors, graph = check_includes(root, build, files)
    errors += check_circles(root, build, files, graph)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"layers: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    rooms = sorted({room_of(f) for f in files if room_of(f)})
    print(f"layers: {len(files)} files in {len(rooms)} rooms; includes follow the floors; no circles in "
          f"{', '.join(r for r in ACYCLIC if r in rooms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
