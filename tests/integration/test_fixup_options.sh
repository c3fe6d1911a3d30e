#!/usr/bin/env bash
# vdkit fixup/inspect options and errors: usage errors (2), unreadable guests (1), folder guests, --no-network,
# --device-names label|vd, --backup, --in-place refused on a streamOptimized VMDK, JSON output read by python.
source "$(dirname "$0")/lib.sh"
export PATH=$PATH:/sbin:/usr/sbin
command -v debugfs >/dev/null || skip "debugfs is not installed"
GUESTS=$VDKIT_SRC/tests/guests
# Exit status of a command (the suite runs under set -e).
rc_of() { local rc=0; "$@" >/dev/null 2>&1 || rc=$?; echo $rc; }

# Usage errors.
check "fixup without --dry-run/--in-place/-o is a usage error" [ "$(rc_of "$VDKIT" fixup "$SCRATCH/none.qcow2")" = 2 ]
check "two modes are a usage error" [ "$(rc_of "$VDKIT" fixup --dry-run --in-place "$SCRATCH/none.qcow2")" = 2 ]
check "an unknown --device-names is a usage error" \
  [ "$(rc_of "$VDKIT" fixup --dry-run --device-names sdX "$SCRATCH/none.qcow2")" = 2 ]
check "an unknown --output is a usage error" [ "$(rc_of "$VDKIT" inspect --output=xml "$SCRATCH/none.qcow2")" = 2 ]

# A disk with no guest on it.
truncate -s 8M "$SCRATCH/empty.raw"
rc=0
msg=$("$VDKIT" inspect "$SCRATCH/empty.raw" 2>&1 >/dev/null) || rc=$?
check "inspect of an empty disk fails (exit 1)" [ $rc = 1 ]
check "and says why: $msg" grep -q "fstab" <<<"$msg"
check "inspect of a missing file fails (exit 1)" [ "$(rc_of "$VDKIT" inspect "$SCRATCH/missing.qcow2")" = 1 ]

# Folder guests: --in-place edits the tree; --no-network leaves the network alone.
cp -a "$GUESTS/ubuntu1404/root" "$SCRATCH/u"
"$VDKIT" fixup --dry-run "$SCRATCH/u" >"$SCRATCH/dry.txt"
check "dry run on a folder prints the console diff" grep -q '^+GRUB_CMDLINE_LINUX="console=ttyS0"' "$SCRATCH/dry.txt"
check "dry run on a folder changes nothing" diff -r "$GUESTS/ubuntu1404/root" "$SCRATCH/u"
"$VDKIT" fixup --in-place --no-network --output-json "$SCRATCH/u" >"$SCRATCH/f.json"
check "--no-network leaves interfaces alone" cmp -s "$GUESTS/ubuntu1404/root/etc/network/interfaces" \
  "$SCRATCH/u/etc/network/interfaces"
check "a folder has no partition table: device names stay, with a warning" \
  grep -q '"no-partition-table"' "$SCRATCH/f.json"
check "the folder's default/grub was fixed" cmp -s "$GUESTS/ubuntu1404/expected/etc/default/grub" \
  "$SCRATCH/u/etc/default/grub"
"$VDKIT" fixup --in-place --output-json "$SCRATCH/u" >"$SCRATCH/f2.json"
check "then network only: interfaces as expected" cmp -s "$GUESTS/ubuntu1404/expected/etc/network/interfaces" \
  "$SCRATCH/u/etc/network/interfaces"

# Images: --device-names vd and label, --backup.
"$VDKIT_SRC/scripts/make-guest" canfar "$SCRATCH/g" >/dev/null
sum=$(sum_of "$SCRATCH/g/canfar.vmdk")
check "--in-place on a streamOptimized VMDK is refused" [ "$(rc_of "$VDKIT" fixup --in-place "$SCRATCH/g/canfar.vmdk")" = 1 ]
check "and the VMDK is untouched" [ "$(sum_of "$SCRATCH/g/canfar.vmdk")" = "$sum" ]
for mode in vd label; do
  cp "$SCRATCH/g/canfar.qcow2" "$SCRATCH/$mode.qcow2"
  "$VDKIT" fixup --in-place --backup --device-names $mode "$SCRATCH/$mode.qcow2" >/dev/null
  qemu-img convert -O raw "$SCRATCH/$mode.qcow2" "$SCRATCH/$mode.raw"
  want=/dev/vda; [ $mode = label ] && want=LABEL=canfar-root
  check "--device-names $mode writes $want in fstab" \
    grep -q "^$want[[:space:]]" <(debugfs -R 'cat /etc/fstab' "$SCRATCH/$mode.raw" 2>/dev/null)
  check "--device-names $mode writes root=$want in extlinux.conf" \
    grep -q "root=$want " <(debugfs -R 'cat /boot/extlinux/extlinux.conf' "$SCRATCH/$mode.raw" 2>/dev/null)
  check "--backup kept the original fstab" cmp -s "$GUESTS/canfar/root/etc/fstab" \
    <(debugfs -R 'cat /etc/fstab.vdkit-orig' "$SCRATCH/$mode.raw" 2>/dev/null)
  check "e2fsck -fn is clean after --device-names $mode --backup" [ "$(rc_of e2fsck -fn "$SCRATCH/$mode.raw")" = 0 ]
  rm -f "$SCRATCH/$mode.raw" "$SCRATCH/$mode.qcow2"
done
cp "$SCRATCH/g/canfar.qcow2" "$SCRATCH/nb.qcow2"
"$VDKIT" fixup --in-place "$SCRATCH/nb.qcow2" >/dev/null
qemu-img convert -O raw "$SCRATCH/nb.qcow2" "$SCRATCH/nb.raw"
check "without --backup no backup is written" \
  bash -c "! debugfs -R 'stat /etc/fstab.vdkit-orig' '$SCRATCH/nb.raw' 2>&1 | grep -q Inode:"

# convert --fixup is the same one pass as fixup -o; a stdin stream cannot be fixed.
"$VDKIT" convert --fixup -O qcow2 "$SCRATCH/g/canfar.vmdk" "$SCRATCH/c1.qcow2" >"$SCRATCH/c1.txt"
"$VDKIT" fixup -o "$SCRATCH/c2.qcow2" "$SCRATCH/g/canfar.vmdk" >/dev/null
check "convert --fixup prints the diff" grep -q '^+++ b/etc/fstab' "$SCRATCH/c1.txt"
# (inode times differ between two runs, so compare the fixed files, not the bytes of the disks)
qemu-img convert -O raw "$SCRATCH/c1.qcow2" "$SCRATCH/c1.raw"
qemu-img convert -O raw "$SCRATCH/c2.qcow2" "$SCRATCH/c2.raw"
for f in /etc/fstab /boot/extlinux/extlinux.conf /etc/sysconfig/network-scripts/ifcfg-eth0; do
  check "convert --fixup and fixup -o write the same $f" \
    cmp -s <(debugfs -R "cat $f" "$SCRATCH/c1.raw" 2>/dev/null) <(debugfs -R "cat $f" "$SCRATCH/c2.raw" 2>/dev/null)
  check "which is the expected $f" cmp -s "$GUESTS/canfar/expected$f" <(debugfs -R "cat $f" "$SCRATCH/c1.raw" 2>/dev/null)
done
check "convert --fixup leaves its source unchanged" [ "$(sum_of "$SCRATCH/g/canfar.vmdk")" = "$sum" ]
"$VDKIT" convert --fixup --output-json -O raw "$SCRATCH/g/canfar.vmdk" "$SCRATCH/c3.raw" >"$SCRATCH/c3.json"
check "convert --fixup --output-json carries the fixup report" \
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["fixup"]["changes"]' "$SCRATCH/c3.json"
# --network keep|none and the --no-network alias, through both subcommands' shared option parser.
cp -a "$GUESTS/ubuntu1404/root" "$SCRATCH/k"
"$VDKIT" fixup --in-place --network keep "$SCRATCH/k" >/dev/null
check "--network keep: the static stanza keeps its address and gateway" \
  bash -c "grep -q 'iface eth0 inet static' '$SCRATCH/k/etc/network/interfaces' && grep -q 'gateway 10.0.0.1' '$SCRATCH/k/etc/network/interfaces'"
check "--network keep: the pinned MAC is gone" bash -c "! grep -q hwaddress '$SCRATCH/k/etc/network/interfaces'"
cp -a "$GUESTS/ubuntu1404/root" "$SCRATCH/n1"
cp -a "$GUESTS/ubuntu1404/root" "$SCRATCH/n2"
"$VDKIT" fixup --in-place --network none "$SCRATCH/n1" >/dev/null
"$VDKIT" fixup --in-place --no-network "$SCRATCH/n2" >/dev/null
check "--network none and --no-network make the same guest" diff -r "$SCRATCH/n1" "$SCRATCH/n2"
check "--network none leaves interfaces alone" cmp -s "$GUESTS/ubuntu1404/root/etc/network/interfaces" \
  "$SCRATCH/n1/etc/network/interfaces"
check "an unknown --network is a usage error" [ "$(rc_of "$VDKIT" fixup --dry-run --network static "$SCRATCH/u")" = 2 ]
check "--network with --no-network is a usage error" \
  [ "$(rc_of "$VDKIT" fixup --dry-run --network keep --no-network "$SCRATCH/u")" = 2 ]
check "convert: fixup options without --fixup are a usage error" \
  [ "$(rc_of "$VDKIT" convert --network keep "$SCRATCH/g/canfar.vmdk" "$SCRATCH/c5.raw")" = 2 ]
check "and no target was left" [ ! -e "$SCRATCH/c5.raw" ]
"$VDKIT_SRC/scripts/make-guest" sl5 "$SCRATCH/g" >/dev/null
"$VDKIT" convert --fixup --network keep -O raw "$SCRATCH/g/sl5.vmdk" "$SCRATCH/c6.raw" >/dev/null
read -r _ off size _ < <(awk '$1 == 1' "$SCRATCH/g/sl5.parts")  # the root file system
dd if="$SCRATCH/c6.raw" of="$SCRATCH/c6.p1" bs=1M skip=$((off / 1048576)) count=$((size / 1048576)) status=none
ifcfg=$(debugfs -R 'cat /etc/sysconfig/network-scripts/ifcfg-eth0' "$SCRATCH/c6.p1" 2>/dev/null)
check "convert --fixup --network keep: the static ifcfg keeps its address" grep -q '^IPADDR=192.168.122.50' <<<"$ifcfg"
check "and its pinned MAC is gone" bash -c "! grep -q HWADDR <<<'$ifcfg'"
check "a stdin stream cannot be fixed (exit 1)" \
  [ "$(rc_of sh -c "'$VDKIT' convert --fixup - '$SCRATCH/c4.qcow2' < '$SCRATCH/g/canfar.vmdk'")" = 1 ]
check "and no target was left" [ ! -e "$SCRATCH/c4.qcow2" ]
finish
