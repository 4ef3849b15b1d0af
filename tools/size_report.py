#!/usr/bin/env python3
"""size_report.py - rsq.h's footprint on a Cortex-M4 (make size).

usage: size_report.py OUTDIR    (ARM_CC, ARM_SIZE, ARM_NM from the environment)

For every documented switch set (RSQ_NO_SOCKETS always: a microcontroller has no BSD
sockets) it compiles rsq.h with -Os -ffunction-sections and prints:
  - the object: .text, .rodata, .data, .bss (everything the set keeps);
  - the core: rsq's share of a linked image (tests/size_core.c: publish, consume in a
    group with resume and reclaim, ack, nack, dead letters; --gc-sections, newlib-nano),
    read from the linker map;
  - the stack: the largest frame (-fstack-usage) and the deepest direct-call path of
    rsq_publish and rsq_consumer_next (-fcallgraph-info; libc and callbacks not counted).
Then the object by section of rsq.h for the firmware set, and the checks: no frame over
512 bytes (exit 1 otherwise) and the core of the firmware set against its 24 KiB
budget (reported, met or missed)."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack_depth  # noqa: E402

CC = os.environ.get("ARM_CC", "arm-none-eabi-gcc")
NM = os.environ.get("ARM_NM", "arm-none-eabi-nm")
FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-Os", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow",
         "-Wstrict-prototypes", "-Werror", "-ffunction-sections", "-fdata-sections"]
LINK = ["--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections"]
SETS = [
    ("default", []),
    ("NO_CLUSTER", ["RSQ_NO_CLUSTER"]),
    ("NO_ADMIN", ["RSQ_NO_ADMIN"]),
    ("firmware: NO_CLUSTER NO_ADMIN", ["RSQ_NO_CLUSTER", "RSQ_NO_ADMIN"]),
    ("firmware + SHORT_ERRORS", ["RSQ_NO_CLUSTER", "RSQ_NO_ADMIN", "RSQ_SHORT_ERRORS"]),
]
FIRMWARE = 3
BUDGET = 24576
FRAME_MAX = 512


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode:
        sys.exit("size: %s failed:\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    return r.stdout


def kind(sec):
    for k in ("text", "rodata", "data", "bss"):
        if sec == "." + k or sec.startswith("." + k + "."):
            return k
    return None


def object_sizes(obj):
    tot = dict.fromkeys(("text", "rodata", "data", "bss"), 0)
    for line in run([CC.replace("gcc", "size"), "-A", obj]).splitlines():
        f = line.split()
        if len(f) >= 2 and f[1].isdigit() and kind(f[0]):
            tot[kind(f[0])] += int(f[1])
    return tot


def map_share(path, obj):
    """Bytes each kind of section of `obj` contributes to the linked image."""
    tot = dict.fromkeys(("text", "rodata", "data", "bss"), 0)
    lines = open(path).read().split("\n")
    start = lines.index("Linker script and memory map") if "Linker script and memory map" in lines else 0
    pending = None
    for line in lines[start:]:
        m = re.match(r"^ (\.\S+)\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(\S+)$", line)
        if m:
            sec, size, f = m.groups()
        else:
            m2 = re.match(r"^ (\.\S+)$", line)
            m3 = re.match(r"^\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(\S+)$", line)
            if m2:
                pending = m2.group(1)
                continue
            if not (m3 and pending):
                pending = None
                continue
            sec, size, f = pending, m3.group(1), m3.group(2)
            pending = None
        if f.endswith(os.path.basename(obj)) and kind(sec):
            tot[kind(sec)] += int(size, 16)
    return tot


def by_section(src, obj):
    """The object's functions and data summed by the implementation section (// >>name)
    of rsq.h they are defined in (strings and other unnamed data: 'unnamed')."""
    anchors = []
    for no, line in enumerate(open(src), 1):
        m = re.match(r"^// >>([a-z]+)(?: \(implementation\)|:)", line)
        if m:
            anchors.append((no, m.group(1)))
    tot = {}
    for line in run([NM, "-l", "-S", "--radix=d", obj]).splitlines():
        f = line.split()
        if len(f) < 4 or f[2] not in "tTrRdDbB":
            continue
        no = int(f[4].rsplit(":", 1)[1]) if len(f) > 4 and ":" in f[4] else 0
        name = "unnamed"
        for a, n in anchors:
            if a <= no:
                name = n
        tot[name] = tot.get(name, 0) + int(f[1])
    return tot


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/size"
    os.makedirs(out, exist_ok=True)
    rows, worst_frame, firmware = [], [], None
    for i, (name, defs) in enumerate(SETS):
        d = ["-DRSQ_NO_SOCKETS"] + ["-D" + x for x in defs]
        obj, core_o = os.path.join(out, "rsq-%d.o" % i), os.path.join(out, "core-%d.o" % i)
        elf, mp = os.path.join(out, "core-%d.elf" % i), os.path.join(out, "core-%d.map" % i)
        ci = os.path.join(out, "rsq-%d.ci" % i)
        run([CC] + FLAGS + d + ["-DRSQ_IMPLEMENTATION", "-fstack-usage", "-fcallgraph-info=su", "-x", "c", "-c",
                                "rsq.h", "-o", obj])
        run([CC] + FLAGS + d + ["-c", "tests/size_core.c", "-o", core_o])
        run([CC] + FLAGS + LINK + ["-Wl,-Map=" + mp, core_o, obj, "-o", elf])
        su = [line.split("\t") for line in open(obj[:-2] + ".su") if line.strip()]
        big = max(su, key=lambda f: int(f[1]))
        over = [f for f in su if int(f[1]) > FRAME_MAX]
        worst_frame += over
        frames, edges, names = stack_depth.load(ci)
        by_name = {names[t]: t for t in frames}
        depth = {}
        for root in ("rsq_publish", "rsq_consumer_next"):
            depth[root] = stack_depth.deepest(by_name[root], frames, edges, {}, set(), set(), set())[0]
        rows.append((name, object_sizes(obj), map_share(mp, obj), int(big[1]), big[0].rsplit(":", 1)[-1], depth))
        if i == FIRMWARE:
            firmware = (obj, rows[-1])
    print("rsq.h on a Cortex-M4, -Os -ffunction-sections, RSQ_NO_SOCKETS in every set (bytes)")
    print("%-31s | %27s | %27s | %s" % ("", "object (all it keeps)", "core in an image", "stack"))
    print("%-31s | %6s %6s %6s %6s | %6s %6s %6s %6s | %s" % ("switch set", "text", "rodata", "data", "bss", "text",
                                                               "rodata", "data", "bss",
                                                               "largest frame; deepest publish / consume"))
    for name, o, c, bf, bfn, dp in rows:
        print("%-31s | %6d %6d %6d %6d | %6d %6d %6d %6d | %d (%s); %d / %d" % (
            name, o["text"], o["rodata"], o["data"], o["bss"], c["text"], c["rodata"], c["data"], c["bss"], bf, bfn,
            dp["rsq_publish"], dp["rsq_consumer_next"]))
    print("(core: rsq's share of tests/size_core.c linked with --gc-sections; stack: direct calls only, without libc's"
          " vsnprintf and the transport's callbacks)")
    obj, row = firmware
    dbg = obj[:-2] + "-g.o"
    run([CC] + FLAGS + ["-g", "-DRSQ_NO_SOCKETS", "-DRSQ_NO_CLUSTER", "-DRSQ_NO_ADMIN", "-DRSQ_IMPLEMENTATION", "-x",
                        "c", "-c", "rsq.h", "-o", dbg])
    print("The firmware set's object by section of rsq.h (text + rodata + data of named symbols; 'unnamed': string"
          " literals):")
    secs = by_section("rsq.h", dbg)
    secs["unnamed"] = row[1]["text"] + row[1]["rodata"] - sum(v for k, v in secs.items() if k != "unnamed")
    for k, v in sorted(secs.items(), key=lambda kv: -kv[1]):
        print("  %-12s %6d" % (k, v))
    core = row[2]["text"] + row[2]["rodata"]
    print("budget: the firmware set's core is %d bytes of text + rodata against %d: %s" % (
        core, BUDGET, "met" if core <= BUDGET else "MISSED by %d" % (core - BUDGET)))
    if worst_frame:
        for f in worst_frame:
            print("size: stack frame over %d bytes: %s %s" % (FRAME_MAX, f[0], f[1]), file=sys.stderr)
        sys.exit(1)
    print("stack: no frame over %d bytes in any set" % FRAME_MAX)


if __name__ == "__main__":
    main()
