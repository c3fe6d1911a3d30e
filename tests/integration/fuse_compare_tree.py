#!/usr/bin/env python3
"""fuse_compare_tree.py WANT GOT: compares two folder trees the way a guest sees them (names, types, modes, owners,
sizes, contents, symlink targets, device numbers, hard-link counts, user.* xattrs). Prints each difference; exit 1
if any. lost+found, which mkfs adds, is ignored at the top of GOT."""
import hashlib
import os
import stat
import sys


def walk(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d != "lost+found"]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            out[os.path.normpath(os.path.join(rel_dir, name))] = describe(p)
    out["."] = describe(root, top=True)
    return out


def describe(p, top=False):
    st = os.lstat(p)
    d = {"type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode))}
    if not top:
        d["uid"], d["gid"] = st.st_uid, st.st_gid
    if stat.S_ISREG(st.st_mode):
        d["size"] = st.st_size
        d["nlink"] = st.st_nlink
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        d["sha256"] = h.hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        d["target"] = os.readlink(p)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not stat.S_ISLNK(st.st_mode) and not top:
        try:
            d["xattrs"] = {k: os.getxattr(p, k) for k in sorted(os.listxattr(p)) if k.startswith("user.")}
        except OSError as e:
            d["xattrs"] = "error %s" % e
    return d


def main():
    want, got = walk(sys.argv[1]), walk(sys.argv[2])
    bad = 0
    for k in sorted(set(want) | set(got)):
        if k not in got:
            print("missing: %s" % k); bad += 1
        elif k not in want:
            print("unexpected: %s" % k); bad += 1
        elif want[k] != got[k]:
            diffs = {f: (want[k].get(f), got[k].get(f)) for f in set(want[k]) | set(got[k])
                     if want[k].get(f) != got[k].get(f)}
            print("differs: %s %s" % (k, diffs)); bad += 1
    print("%d entries compared, %d differences" % (len(want), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
