#!/usr/bin/env python3
"""Writes an XVA (the `xe vm-export` layout) from raw disk files, for the tests: a tar holding ova.xml (XML-RPC
objects: the VM, a VBD and a VDI per disk) and a folder Ref:NN/ per disk of numbered 1 MiB chunks, each followed by
its .checksum (SHA-1 hex) or .xxhash (xxh64 hex, from the xxhsum tool). Chunks of zeros are left out, as xapi does,
except the last one of each disk.

  xvagen.py OUT.xva --vm NAME DISK.raw [DISK.raw...] [--xxhash] [--compress gzip|zstd]
                    [--bad-sum DISK:CHUNK] [--truncate BYTES] [--no-sum DISK:CHUNK] [--order REVERSE]

OUT may be '-' (standard output). Disk names in ova.xml are the raw files' base names."""
import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile

CHUNK = 1 << 20


def xxh64_hex(data):
    out = subprocess.run(["xxhsum", "-H1", "-"], input=data, capture_output=True, check=True).stdout
    return out.split()[0].decode()


def member(name, value):
    return f"<member><name>{name}</name><value>{value}</value></member>"


def struct(*members):
    return "<struct>" + "".join(members) + "</struct>"


def array(items):
    return "<array><data>" + "".join(f"<value>{i}</value>" for i in items) + "</data></array>"


def ova_xml(vm, disks):
    objs = []
    vbds = [f"Ref:{10 + 2 * i}" for i in range(len(disks))]
    objs.append(struct(member("class", "VM"), member("id", "Ref:1"),
                       member("snapshot", struct(member("name_label", vm.replace("&", "&amp;").replace("<", "&lt;")),
                                                 member("is_a_template", "<boolean>0</boolean>"),
                                                 member("is_a_snapshot", "<boolean>0</boolean>"),
                                                 member("is_control_domain", "<boolean>0</boolean>"),
                                                 member("VBDs", array(vbds))))))
    for i, (path, size) in enumerate(disks):
        vdi = f"Ref:{11 + 2 * i}"
        objs.append(struct(member("class", "VBD"), member("id", vbds[i]),
                           member("snapshot", struct(member("VM", "Ref:1"), member("VDI", vdi),
                                                     member("type", "Disk"), member("userdevice", str(i)),
                                                     member("bootable", "<boolean>1</boolean>")))))
        objs.append(struct(member("class", "VDI"), member("id", vdi),
                           member("snapshot", struct(member("name_label", os.path.basename(path)),
                                                     member("virtual_size", str(size)),
                                                     member("type", "system")))))
    # A CD drive with no disk: not a disk of the VM.
    objs[0] = objs[0].replace(array(vbds), array(vbds + ["Ref:99"]))
    objs.append(struct(member("class", "VBD"), member("id", "Ref:99"),
                       member("snapshot", struct(member("VDI", "OpaqueRef:NULL"), member("type", "CD"),
                                                 member("userdevice", "3")))))
    return ('<?xml version="1.0" ?>\n<value>' +
            struct(member("version", struct(member("hostname", "xvagen"), member("export_vsn", "2"))),
                   member("objects", array(objs))) + "</value>\n").encode()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("disks", nargs="+")
    ap.add_argument("--vm", required=True)
    ap.add_argument("--xxhash", action="store_true")
    ap.add_argument("--compress", choices=["gzip", "zstd"])
    ap.add_argument("--bad-sum")
    ap.add_argument("--no-sum")
    ap.add_argument("--truncate", type=int)
    ap.add_argument("--order", choices=["reverse"])
    a = ap.parse_args()
    disks = [(p, os.path.getsize(p)) for p in a.disks]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add(tar, "ova.xml", ova_xml(a.vm, disks))
        order = list(range(len(disks)))
        if a.order == "reverse":
            order.reverse()
        for i in order:
            path, size = disks[i]
            ref = f"Ref:{11 + 2 * i}"
            nchunks = (size + CHUNK - 1) // CHUNK
            with open(path, "rb") as f:
                for n in range(nchunks):
                    data = f.read(CHUNK)
                    if data.count(0) == len(data) and n != nchunks - 1:
                        continue
                    name = f"{ref}/{n:08d}"
                    add(tar, name, data)
                    if a.no_sum == f"{i}:{n}":
                        continue
                    if a.xxhash:
                        s = xxh64_hex(data)
                    else:
                        s = hashlib.sha1(data).hexdigest()
                    if a.bad_sum == f"{i}:{n}":
                        s = ("0" if s[0] != "0" else "1") + s[1:]
                    add(tar, name + (".xxhash" if a.xxhash else ".checksum"), s.encode())
    raw = buf.getvalue()
    if a.compress == "gzip":
        raw = subprocess.run(["gzip", "-c"], input=raw, capture_output=True, check=True).stdout
    elif a.compress == "zstd":
        raw = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    if a.truncate is not None:
        raw = raw[:a.truncate]
    if a.out == "-":
        sys.stdout.buffer.write(raw)
    else:
        with open(a.out, "wb") as f:
            f.write(raw)


if __name__ == "__main__":
    main()
