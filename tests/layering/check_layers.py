#!/usr/bin/env python3
"""Checks the include graph against the layers in docs/ARCHITECTURE.md: each component includes only the
components below it, so the tree has no module cycles and no test code in the product. Prints one line per
violation and 'N passed, M failed' (one check per component)."""
import os
import re
import sys

# component -> the components its non-test files may include (itself always allowed).
# Order matters only for reading: lower layers first.
ALLOWED = {
    "blockcore/base": set(),
    "blockcore/io": {"blockcore/base"},
    # Format drivers and sources are peers around the open dispatcher (sources/image.h): a qcow2 backing file or
    # a VMDK parent is opened through it. The stdin stream reader parses VMDK stream markers; probing looks inside
    # a compressed file for an XVA.
    "blockcore/sources": {"blockcore/base", "blockcore/io", "blockcore/vmdk", "blockcore/xva"},
    "blockcore/qcow2": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers"},
    "blockcore/vmdk": {"blockcore/base", "blockcore/io", "blockcore/sources"},
    "blockcore/vhd": {"blockcore/base", "blockcore/io", "blockcore/sources"},
    # A VHDX log is replayed into the memory overlay of layers/overlay.h, never into the file.
    "blockcore/vhdx": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers"},
    # An XVA disk is a StreamSource (sources/stream_source.h) for the convert pipeline.
    "blockcore/xva": {"blockcore/base", "blockcore/io", "blockcore/sources"},
    # LVM2 volume groups: PV labels, metadata and LVs as devices over the PV devices it is given; below layers,
    # whose device-stack builder finds the PVs on disks and partitions.
    "blockcore/lvm": {"blockcore/base"},
    # qcow2 implements the qcow2 overlay that layers/overlay.h declares; layers include no driver headers.
    "blockcore/layers": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/lvm"},
    "blockcore/convert": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/qcow2", "blockcore/layers",
                          "blockcore/xva"},
    "blockcore/testing": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm"},
    "blockcore/env": {"blockcore/base", "blockcore/io", "blockcore/convert", "blockcore/testing"},
    "guestfs": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm"},
    "fuse": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm", "guestfs"},
    "fixups": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm", "guestfs"},
    "batch": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm", "blockcore/convert",
              "guestfs", "fixups"},
    # sparsify=true asks guestfs for the map of unused blocks (the plugin still parses no file system itself).
    "nbd-plugin": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm", "blockcore/env",
                   "guestfs"},
    "cli": {"blockcore/base", "blockcore/io", "blockcore/sources", "blockcore/layers", "blockcore/lvm", "blockcore/convert",
            "blockcore/env", "guestfs", "fuse", "fixups", "batch"},
}
# Tests beside the code may also use the test doubles, the shell helper and any blockcore layer (a test of the
# I/O engine opens real images; a concurrency test stacks an overlay on a driver).
TEST_EXTRA = {c for c in ALLOWED if c.startswith("blockcore/") and c != "blockcore/env"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def component_of(path):
    best = None
    for c in ALLOWED:
        if path == c or path.startswith(c + "/"):
            if best is None or len(c) > len(best):
                best = c
    return best


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    bad = {c: [] for c in ALLOWED}
    for comp in ALLOWED:
        top = os.path.join(root, comp)
        if not os.path.isdir(top):
            bad[comp].append(f"{comp}: missing folder")
            continue
        for dirpath, _, files in os.walk(top):
            for f in files:
                if not f.endswith((".cc", ".h")):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                if component_of(rel) != comp:
                    continue  # a sub-component checks its own files
                allowed = set(ALLOWED[comp]) | {comp}
                if f.endswith(("_test.cc", "_test.h")) or comp == "blockcore/testing":
                    allowed |= TEST_EXTRA
                with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for inc in INCLUDE.findall(text):
                    target = component_of(inc)
                    if target is None or target in allowed:
                        continue
                    bad[comp].append(f"{rel} includes {inc} ({comp} may not depend on {target})")
    passed = failed = 0
    for comp, problems in bad.items():
        if problems:
            failed += 1
            for p in problems:
                print("FAIL:", p)
        else:
            passed += 1
            print(f"ok: {comp} includes only its own layer and {sorted(ALLOWED[comp]) or 'nothing'}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
