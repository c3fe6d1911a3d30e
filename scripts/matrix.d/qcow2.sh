# qcow2 family of the test matrix (sourced by scripts/make-matrix with OUT, BASE and add): versions, cluster sizes,
# zlib/zstd compression, extended L2 and subclusters, external data files, zero clusters, backing chains, snapshots.
q=$OUT/qcow2
mkdir -p "$q"
qi() { qemu-io -f qcow2 "$@" >/dev/null; }
conv() { local out=$1; shift; qemu-img convert -f raw -O qcow2 "$@" "$BASE" "$out"; }

conv "$q/v2.qcow2" -o compat=0.10;                           add qcow2-v2 "$q/v2.qcow2" qcow2
conv "$q/v3.qcow2" -o compat=1.1;                            add qcow2-v3 "$q/v3.qcow2" qcow2
conv "$q/c512.qcow2" -o cluster_size=512;                    add qcow2-c512 "$q/c512.qcow2" qcow2
conv "$q/c2m.qcow2" -o cluster_size=2M;                      add qcow2-c2m "$q/c2m.qcow2" qcow2
conv "$q/zlib.qcow2" -c;                                     add qcow2-zlib "$q/zlib.qcow2" qcow2
conv "$q/zlib-v2.qcow2" -c -o compat=0.10;                   add qcow2-zlib-v2 "$q/zlib-v2.qcow2" qcow2
# Small clusters pack compressed data tightly, so clusters span into the next host cluster.
conv "$q/zlib-4k.qcow2" -c -o cluster_size=4k;               add qcow2-zlib-4k "$q/zlib-4k.qcow2" qcow2
conv "$q/zstd.qcow2" -c -o compression_type=zstd;            add qcow2-zstd "$q/zstd.qcow2" qcow2
conv "$q/zstd-2m.qcow2" -c -o compression_type=zstd,cluster_size=2M; add qcow2-zstd-2m "$q/zstd-2m.qcow2" qcow2
conv "$q/xl2.qcow2" -o extended_l2=on;                       add qcow2-xl2 "$q/xl2.qcow2" qcow2
conv "$q/xl2-128k.qcow2" -o extended_l2=on,cluster_size=128k; add qcow2-xl2-128k "$q/xl2-128k.qcow2" qcow2
conv "$q/refbits1.qcow2" -o refcount_bits=1,lazy_refcounts=on; add qcow2-refbits1 "$q/refbits1.qcow2" qcow2
# External data files, named relative to the image. QEMU opens a relative data-file name from its working
# directory (vdkit from the image's folder), so these are not in the manifest: test_qcow2_map.sh reads every
# image of $OUT/qcow2 with qemu-img running in that folder.
(cd "$q" && conv datafile.qcow2 -o data_file=datafile.bin)
(cd "$q" && conv datafile-raw.qcow2 -o data_file=datafile-raw.bin,data_file_raw=on)

# Zero clusters: the v3 zero flag with and without a host cluster, and unaligned zero writes.
conv "$q/zeros.qcow2"
qi -c 'write -z 1M 1M' -c 'write -z -u 2M 512k' -c 'write -z 100000 30000' -c 'write -z -u 12M 4M' "$q/zeros.qcow2"
add qcow2-zero-clusters "$q/zeros.qcow2" qcow2

# Subclusters: partial writes into an extended-L2 overlay over raw data.
cp "$BASE" "$q/xl2-base.raw"
qemu-img create -q -f qcow2 -o extended_l2=on -b xl2-base.raw -F raw "$q/xl2-sub.qcow2"
qi -c 'write -P 0xab 4100 3000' -c 'write -P 0xcd 70000 10000' -c 'write -z 196608 8192' \
  -c 'write -z -u 2M 4096' -c 'write -P 0x11 2099200 2048' "$q/xl2-sub.qcow2"
add qcow2-xl2-subclusters "$q/xl2-sub.qcow2" qcow2

# qcow2 over raw (beside base.raw: a backing name may not leave the top image's folder).
qemu-img create -q -f qcow2 -b "$(basename "$BASE")" -F raw "$OUT/qcow2-over-raw.qcow2"
qi -c 'write -P 0x77 65000 200000' -c 'write -z 2M 64k' -c 'write -P 0x78 4194303 3' "$OUT/qcow2-over-raw.qcow2"
add qcow2-over-raw "$OUT/qcow2-over-raw.qcow2" qcow2

# Three qcow2 layers with different contents per layer (relative backing names, backing format recorded).
conv "$q/chain1.qcow2"
qemu-img create -q -f qcow2 -b chain1.qcow2 -F qcow2 "$q/chain2.qcow2"
qi -c 'write -P 0x21 0 1M' -c 'write -P 0x22 5M 100k' -c 'write -z 2M 64k' "$q/chain2.qcow2"
qemu-img create -q -f qcow2 -b chain2.qcow2 -F qcow2 "$q/chain3.qcow2"
qi -c 'write -P 0x31 512k 1M' -c 'write -z -u 5M 64k' -c 'write -P 0x32 23M 4096' "$q/chain3.qcow2"
add qcow2-chain3 "$q/chain3.qcow2" qcow2

# A backing file shorter than the image on top of it.
head -c 3000000 "$BASE" > "$q/short.raw"
qemu-img create -q -f qcow2 -b short.raw -F raw "$q/over-short.qcow2" 24M
qi -c 'write -P 0x44 2900000 200000' -c 'write -P 0x45 20M 64k' "$q/over-short.qcow2"
add qcow2-over-short "$q/over-short.qcow2" qcow2

# Compressed image under a writable layer (compressed clusters partly overwritten above).
qemu-img create -q -f qcow2 -b zstd.qcow2 -F qcow2 "$q/over-zstd.qcow2"
qi -c 'write -P 0x55 2M 4096' -c 'write -z 0 64k' "$q/over-zstd.qcow2"
add qcow2-over-zstd "$q/over-zstd.qcow2" qcow2

# Internal snapshot: the active layer changes after it, and reads are of the active layer.
conv "$q/snap.qcow2"
qemu-img snapshot -c first "$q/snap.qcow2"
qi -c 'write -P 0x66 0 128k' -c 'write -z 2M 1M' -c 'write -P 0x67 9M 8k' "$q/snap.qcow2"
add qcow2-snapshot "$q/snap.qcow2" qcow2

# qcow2 over a VMDK base (the mixed-format chain).
qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$BASE" "$q/base.vmdk"
qemu-img create -q -f qcow2 -b base.vmdk -F vmdk "$q/over-vmdk.qcow2"
qi -c 'write -P 0x88 1M 300k' -c 'write -z 0 64k' "$q/over-vmdk.qcow2"
add qcow2-over-vmdk "$q/over-vmdk.qcow2" qcow2
