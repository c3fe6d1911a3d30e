#!/usr/bin/env python3
"""Writes VHD images from Microsoft's VHD specification for the tests: dynamic and differencing disks whose
blocks carry partial sector bitmaps (qemu-img writes whole bitmaps and cannot make differencing disks).

  vhdgen.py dynamic OUT --size BYTES [--block-size BYTES] [--write OFF:LEN:SEED]... [--expect RAW]
  vhdgen.py diff OUT --parent PARENT [--w2ru NAME] [--w2ku NAME] [--macx URL] [--parent-name NAME]
                 [--parent-uuid HEX32] [--write OFF:LEN:SEED]... [--expect RAW --parent-raw RAW]

Writes are sector-aligned runs of bytes from a seeded generator; only their sectors get bitmap bits. --expect
writes the raw disk a reader must see (the parent's raw contents, or zeros, with the writes applied)."""
import argparse
import os
import random
import struct
import time
import uuid

SECTOR = 512


def checksum(buf, at):
    s = sum(buf[:at]) + sum(buf[at + 4:])
    return (~s) & 0xffffffff


# Creator "win " (Hyper-V): readers, qemu included, take Current Size as the disk size.
def footer(size, disk_type, data_offset, uid, creator=b"win "):
    f = bytearray(512)
    f[0:8] = b"conectix"
    struct.pack_into(">IIQI", f, 8, 2, 0x00010000, data_offset, int(time.time()) - 946684800)
    f[28:32] = creator
    struct.pack_into(">I", f, 32, 0x00010000)
    f[36:40] = b"Wi2k"
    struct.pack_into(">QQ", f, 40, size, size)
    # Geometry from the specification's algorithm (informative here: readers use Current Size).
    sectors = min(size // SECTOR, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    struct.pack_into(">HBB", f, 56, min(cth // heads, 65535), heads, spt)
    struct.pack_into(">I", f, 60, disk_type)
    f[68:84] = uid
    struct.pack_into(">I", f, 64, checksum(f, 64))
    return bytes(f)


def parse_writes(specs):
    out = []
    for s in specs or []:
        off, ln, seed = (int(x, 0) for x in s.split(":"))
        assert off % SECTOR == 0 and ln % SECTOR == 0, "writes are whole sectors"
        out.append((off, random.Random(seed).randbytes(ln)))
    return out


def write_image(out, size, block, disk_type, writes, header_extra):
    """header_extra(hdr, locator_area_offset) fills parent fields and returns locator payloads [(code, bytes)]."""
    uid = uuid.uuid4().bytes
    blocks = (size + block - 1) // block
    bitmap_bytes = ((block // SECTOR + 7) // 8 + SECTOR - 1) // SECTOR * SECTOR
    hdr_off = 512
    bat_off = hdr_off + 1024
    bat_bytes = (blocks * 4 + SECTOR - 1) // SECTOR * SECTOR
    hdr = bytearray(1024)
    loc_at = bat_off + bat_bytes
    locs = header_extra(hdr, loc_at) if header_extra else []
    loc_blob = bytearray()
    for i, (code, data) in enumerate(locs):
        space = (len(data) + SECTOR - 1) // SECTOR * SECTOR
        struct.pack_into(">4sIIIQ", hdr, 576 + 24 * i, code, space // SECTOR, len(data), 0, loc_at + len(loc_blob))
        loc_blob += data + bytes(space - len(data))
    data_start = loc_at + len(loc_blob)
    # Blocks touched by writes, with per-sector bitmaps.
    touched = {}
    for off, payload in writes:
        for pos in range(0, len(payload), SECTOR):
            d = off + pos
            b, sec = divmod(d, block)
            bm, content = touched.setdefault(b, (bytearray(bitmap_bytes), bytearray(block)))
            s = sec // SECTOR
            bm[s // 8] |= 0x80 >> (s % 8)
            content[sec:sec + SECTOR] = payload[pos:pos + SECTOR]
    bat = [0xffffffff] * blocks
    body = bytearray()
    for b in sorted(touched):
        bat[b] = (data_start + len(body)) // SECTOR
        bm, content = touched[b]
        body += bm + content
    hdr[0:8] = b"cxsparse"
    struct.pack_into(">QQIII", hdr, 8, 0xffffffffffffffff, bat_off, 0x00010000, blocks, block)
    struct.pack_into(">I", hdr, 36, checksum(hdr, 36))
    ftr = footer(size, disk_type, hdr_off, uid)
    with open(out, "wb") as f:
        f.write(ftr)
        f.write(hdr)
        f.write(b"".join(struct.pack(">I", e) for e in bat) + b"\xff" * (bat_bytes - 4 * blocks))
        f.write(loc_blob)
        f.write(body)
        f.write(ftr)


def utf16le(s):
    return s.encode("utf-16-le")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["dynamic", "diff"])
    ap.add_argument("out")
    ap.add_argument("--size", type=lambda x: int(x, 0))
    ap.add_argument("--block-size", type=lambda x: int(x, 0), default=2 << 20)
    ap.add_argument("--parent")
    ap.add_argument("--parent-raw")
    ap.add_argument("--w2ru")
    ap.add_argument("--w2ku")
    ap.add_argument("--macx")
    ap.add_argument("--parent-name")
    ap.add_argument("--parent-uuid")
    ap.add_argument("--write", action="append")
    ap.add_argument("--expect")
    a = ap.parse_args()
    writes = parse_writes(a.write)
    extra = None
    size = a.size
    if a.kind == "diff":
        with open(a.parent, "rb") as p:
            p.seek(-512, os.SEEK_END)
            pf = p.read(512)
        size = size or struct.unpack_from(">Q", pf, 48)[0]
        puid = bytes.fromhex(a.parent_uuid) if a.parent_uuid else pf[68:84]

        def extra(hdr, _):
            hdr[40:56] = puid
            struct.pack_into(">I", hdr, 56, int(os.path.getmtime(a.parent)) - 946684800)
            name = (a.parent_name if a.parent_name is not None else os.path.basename(a.parent)).encode("utf-16-be")
            hdr[64:64 + min(len(name), 512)] = name[:512]
            locs = []
            if a.w2ru:
                locs.append((b"W2ru", utf16le(a.w2ru)))
            if a.w2ku:
                locs.append((b"W2ku", utf16le(a.w2ku)))
            if a.macx:
                locs.append((b"MacX", a.macx.encode()))
            return locs
    write_image(a.out, size, a.block_size, 4 if a.kind == "diff" else 3, writes, extra)
    if a.expect:
        if a.kind == "diff":
            with open(a.parent_raw, "rb") as p:
                raw = bytearray(p.read())
            raw = raw[:size] + bytes(max(0, size - len(raw)))
        else:
            raw = bytearray(size)
        for off, payload in writes:
            raw[off:off + len(payload)] = payload
        with open(a.expect, "wb") as f:
            f.write(raw)


if __name__ == "__main__":
    main()
