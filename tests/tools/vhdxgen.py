#!/usr/bin/env python3
"""Writes a differencing VHDX from Microsoft's VHDX specification for the tests (qemu-img cannot): the child of
PARENT.vhdx, whose writes are whole logical sectors in partially present blocks (a sector bitmap block per chunk),
with its parent locator (parent_linkage = the parent's DataWriteGuid, relative_path).

  vhdxgen.py OUT --parent PARENT.vhdx --relative-path NAME [--linkage GUID] [--write OFF:LEN:SEED]...
             [--expect RAW --parent-raw RAW] [--full-block N]
  vhdxgen.py OUT --size BYTES [--block-size BYTES] [--write OFF:LEN:SEED]...   (a dynamic disk, no parent)

--full-block N also stores payload block N whole (fully present)."""
import argparse
import random
import struct
import uuid

MIB = 1 << 20
POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = TABLE[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def seal(buf, at=4):
    struct.pack_into("<I", buf, at, 0)
    struct.pack_into("<I", buf, at, crc32c(bytes(buf)))


def guid_bytes(s):
    return uuid.UUID(s).bytes_le


def parent_info(path):
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    best = None
    for at in (64 << 10, 128 << 10):
        h = data[at:at + 4096]
        if h[:4] == b"head" and (best is None or struct.unpack_from("<Q", h, 8)[0] > best[0]):
            best = (struct.unpack_from("<Q", h, 8)[0], h)
    dwg = str(uuid.UUID(bytes_le=best[1][32:48]))
    return dwg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--parent")
    ap.add_argument("--relative-path")
    ap.add_argument("--block-size", type=int, default=2 * MIB)
    ap.add_argument("--linkage")
    ap.add_argument("--size", type=int)
    ap.add_argument("--write", action="append", default=[])
    ap.add_argument("--full-block", type=int, action="append", default=[])
    ap.add_argument("--expect")
    ap.add_argument("--parent-raw")
    a = ap.parse_args()
    if a.parent_raw:
        with open(a.parent_raw, "rb") as f:
            raw = bytearray(f.read())
    else:
        raw = bytearray(a.size)
    size = a.size or len(raw)
    bs, lss = a.block_size, 512
    diff = a.parent is not None
    chunk_ratio = (1 << 23) * lss // bs
    blocks = (size + bs - 1) // bs
    chunks = (blocks + chunk_ratio - 1) // chunk_ratio
    bat_entries = chunks * (chunk_ratio + 1) if diff else blocks + (blocks - 1) // chunk_ratio
    bat_bytes = (bat_entries * 8 + MIB - 1) // MIB * MIB
    writes = []
    for w in a.write:
        off, ln, seed = (int(x, 0) for x in w.split(":"))
        writes.append((off, random.Random(seed).randbytes(ln)))
    for b in a.full_block:
        writes.append((b * bs, random.Random(1000 + b).randbytes(min(bs, size - b * bs))))
    # Layout: 0-1 MiB headers/regions, metadata at 1 MiB, BAT at 2 MiB, then bitmaps and blocks.
    meta_off, bat_off = 1 * MIB, 2 * MIB
    next_free = bat_off + bat_bytes
    blockdata, bitmaps = {}, {}
    for off, payload in writes:
        for p in range(0, len(payload), lss):
            d = off + p
            b, inb = divmod(d, bs)
            blockdata.setdefault(b, bytearray(bs))[inb:inb + lss] = payload[p:p + lss]
            if not diff:
                raw[d:d + lss] = payload[p:p + lss]
                continue
            c = b // chunk_ratio
            bm = bitmaps.setdefault(c, bytearray(MIB))
            bit = (b % chunk_ratio) * (bs // lss) + inb // lss
            bm[bit // 8] |= 1 << (bit % 8)
            raw[d:d + lss] = payload[p:p + lss]
    bat = [0] * bat_entries
    body = []
    for c in sorted(bitmaps):
        bat[c * (chunk_ratio + 1) + chunk_ratio] = (next_free // MIB) << 20 | 6
        body.append((next_free, bytes(bitmaps[c])))
        next_free += MIB
    for b in sorted(blockdata):
        state = 6 if b in a.full_block or not diff else 7
        bat[b + b // chunk_ratio] = (next_free // MIB) << 20 | state
        body.append((next_free, bytes(blockdata[b])))
        next_free += bs
    log_off = next_free  # an empty 1 MiB log region (LogGuid zero: nothing to replay)
    next_free += MIB
    img = bytearray(next_free)
    img[0:8] = b"vhdxfile"
    creator = "vdkit vhdxgen".encode("utf-16-le")
    img[8:8 + len(creator)] = creator
    for i, at in enumerate((64 << 10, 128 << 10)):
        h = bytearray(4096)
        h[0:4] = b"head"
        struct.pack_into("<Q", h, 8, 10 + i)
        h[16:32] = uuid.uuid4().bytes_le
        h[32:48] = uuid.uuid4().bytes_le
        struct.pack_into("<HHIQ", h, 64, 0, 1, MIB, log_off)
        seal(h)
        img[at:at + 4096] = h
    for at in (192 << 10, 256 << 10):
        r = bytearray(64 << 10)
        r[0:4] = b"regi"
        struct.pack_into("<I", r, 8, 2)
        r[16:32] = guid_bytes("2DC27766-F623-4200-9D64-115E9BFD4A08")
        struct.pack_into("<QII", r, 32, bat_off, bat_bytes, 1)
        r[48:64] = guid_bytes("8B7CA206-4790-4B9A-B8FE-575F050F886E")
        struct.pack_into("<QII", r, 64, meta_off, MIB, 1)
        seal(r)
        img[at:at + len(r)] = r
    md = bytearray(MIB)
    md[0:8] = b"metadata"
    linkage = "{" + (a.linkage or (parent_info(a.parent) if diff else "")) + "}"
    kv = [("parent_linkage", linkage), ("relative_path", a.relative_path or ""),
          ("absolute_win32_path", "C:\\vms\\" + (a.relative_path or "").split("\\")[-1])]
    loc = bytearray(20 + 12 * len(kv))
    loc[0:16] = guid_bytes("B04AEFB7-D19E-4A81-B789-25B8E9445913")
    struct.pack_into("<H", loc, 18, len(kv))
    for i, (k, v) in enumerate(kv):
        kb, vb = k.encode("utf-16-le"), v.encode("utf-16-le")
        ko = len(loc)
        loc += kb
        vo = len(loc)
        loc += vb
        struct.pack_into("<IIHH", loc, 20 + 12 * i, ko, vo, len(kb), len(vb))
    items = [("CAA16737-FA36-4D43-B3B6-33F0AA44E76B", struct.pack("<II", bs, 2 if diff else 0), 4),
             ("2FA54224-CD1B-4876-B211-5DBED83BF4B8", struct.pack("<Q", size), 6),
             ("BECA12AB-B2E6-4523-93EF-C309E000C746", uuid.uuid4().bytes_le, 6),
             ("8141BF1D-A96F-4709-BA47-F233A8FAAB5F", struct.pack("<I", lss), 6),
             ("CDA348C7-445D-4471-9CC9-E9885251C556", struct.pack("<I", 4096), 6),
             ("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C", bytes(loc), 4)][:6 if diff else 5]
    struct.pack_into("<H", md, 10, len(items))
    pos = 64 << 10
    for i, (g, v, flags) in enumerate(items):
        e = 32 + 32 * i
        md[e:e + 16] = guid_bytes(g)
        struct.pack_into("<III", md, e + 16, pos, len(v), flags)
        md[pos:pos + len(v)] = v
        pos += (len(v) + 7) // 8 * 8
    img[meta_off:meta_off + MIB] = md
    img[bat_off:bat_off + bat_entries * 8] = b"".join(struct.pack("<Q", e) for e in bat)
    for at, data in body:
        img[at:at + len(data)] = data
    with open(a.out, "wb") as f:
        f.write(img)
    if a.expect:
        with open(a.expect, "wb") as f:
            f.write(raw[:size])


if __name__ == "__main__":
    main()
