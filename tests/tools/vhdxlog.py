#!/usr/bin/env python3
"""Gives a clean VHDX a pending log, written from Microsoft's VHDX specification (section "Log"), for the tests:
byte ranges of the file are moved into log entries and overwritten with garbage in the file, so only a correct
replay reads the disk as it was. qemu-img writes at most one entry per open and flushes it at once; this writes
sequences of several entries, zero descriptors, entries that wrap past the end of the log, and stale entries.

  vhdxlog.py IMAGE [--move OFF:LEN]... [--zero OFF:LEN]... [--entries N] [--start SECTOR] [--stale]

--move OFF:LEN   the file's bytes there (4 KiB-aligned) go into data descriptors; the file gets 0x5c bytes
--zero OFF:LEN   the range must be zeros in the file; a zero descriptor covers it, the file gets 0xc5 bytes
--entries N      spread the descriptors over N entries of one sequence (sequence numbers 100, 101, ...)
--start SECTOR   the log sector of the first entry (a sequence near the end wraps to the start of the log)
--stale          also write, after the sequence, an older complete entry (sequence 50) that would write garbage
                 over the first moved range: the scan must prefer the sequence with the highest sequence number"""
import argparse
import os
import struct
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vhdxgen import seal  # noqa: E402  (CRC-32C sealing, shared with the VHDX writer)

SECTOR = 4096


def entry(seq, tail, guid, file_size, descs):
    """descs: ("desc", offset, 4096 bytes) or ("zero", offset, length)."""
    desc_sectors = (64 + 32 * len(descs) + SECTOR - 1) // SECTOR
    data = [d for d in descs if d[0] == "desc"]
    e = bytearray((desc_sectors + len(data)) * SECTOR)
    e[0:4] = b"loge"
    struct.pack_into("<IIQI", e, 8, len(e), tail, seq, len(descs))
    e[32:48] = guid
    struct.pack_into("<QQ", e, 48, file_size, file_size)
    k = 0
    for i, (kind, off, what) in enumerate(descs):
        p = 64 + 32 * i
        if kind == "zero":
            e[p:p + 4] = b"zero"
            struct.pack_into("<QQQ", e, p + 8, what, off, seq)
            continue
        e[p:p + 4] = b"desc"
        e[p + 4:p + 8] = what[4092:4096]
        e[p + 8:p + 16] = what[0:8]
        struct.pack_into("<QQ", e, p + 16, off, seq)
        s = (desc_sectors + k) * SECTOR
        k += 1
        e[s:s + 4] = b"data"
        struct.pack_into("<I", e, s + 4, seq >> 32)
        e[s + 8:s + 4092] = what[8:4092]
        struct.pack_into("<I", e, s + 4092, seq & 0xFFFFFFFF)
    seal(e)
    return bytes(e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("image")
    ap.add_argument("--move", action="append", default=[])
    ap.add_argument("--zero", action="append", default=[])
    ap.add_argument("--entries", type=int, default=1)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--stale", action="store_true")
    a = ap.parse_args()
    with open(a.image, "rb") as f:
        img = bytearray(f.read())
    file_size = len(img)
    heads = [(at, bytearray(img[at:at + SECTOR])) for at in (64 << 10, 128 << 10)]
    cur = max(heads, key=lambda h: struct.unpack_from("<Q", h[1], 8)[0])[1]
    log_len, log_off = struct.unpack_from("<IQ", cur, 68)
    guid = uuid.uuid4().bytes_le

    descs = []
    for m in a.move:
        off, ln = (int(x, 0) for x in m.split(":"))
        for p in range(off, off + ln, SECTOR):
            descs.append(("desc", p, bytes(img[p:p + SECTOR])))
            img[p:p + SECTOR] = b"\x5c" * SECTOR
    for z in a.zero:
        off, ln = (int(x, 0) for x in z.split(":"))
        assert img[off:off + ln].count(0) == ln, "a --zero range must be zeros in the file"
        descs.append(("zero", off, ln))
        img[off:off + ln] = b"\xc5" * ln

    log = bytearray(img[log_off:log_off + log_len])
    n = log_len // SECTOR

    def put(sector, e):
        for i in range(len(e) // SECTOR):
            s = (sector + i) % n
            log[s * SECTOR:(s + 1) * SECTOR] = e[i * SECTOR:(i + 1) * SECTOR]

    per = max(1, (len(descs) + a.entries - 1) // a.entries)
    groups = [descs[i:i + per] for i in range(0, len(descs), per)] or [[]]
    while len(groups) < a.entries:
        groups.append([])
    pos, tail = a.start, a.start * SECTOR
    for i, g in enumerate(groups):
        e = entry(100 + i, tail, guid, file_size, g)
        put(pos, e)
        pos += len(e) // SECTOR
    if a.stale and a.move:
        off = int(a.move[0].split(":")[0], 0)
        e = entry(50, (pos % n) * SECTOR, guid, file_size, [("desc", off, b"\xee" * SECTOR)])
        put(pos, e)
    img[log_off:log_off + log_len] = log

    # Both headers name the log (sequence numbers go up, so the current one stays current).
    for at, h in heads:
        h[48:64] = guid
        struct.pack_into("<Q", h, 8, struct.unpack_from("<Q", h, 8)[0] + 2)
        seal(h)
        img[at:at + SECTOR] = h
    with open(a.image, "wb") as f:
        f.write(img)


if __name__ == "__main__":
    main()
