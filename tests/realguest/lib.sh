# Shared by the real-guest scripts: paths, the cache of the debootstrap tree, and loop/mount helpers whose undo
# runs on every exit path. Sourced, never run.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

RG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VDKIT_SRC=${VDKIT_SRC:-$(cd "$RG_DIR/../.." && pwd)}
VDKIT_BUILD=${VDKIT_BUILD:-$VDKIT_SRC/build}
# One tree per machine, shared by every build directory and every layout.
RG_CACHE=${VDKIT_GUEST_CACHE:-/var/cache/vdkit-tests}
RG_SUITE=bookworm

rg_log() { echo "${0##*/}: $*" >&2; }
rg_die() { rg_log "$*"; exit 1; }

# Undo stack: each rg_defer CMD runs at exit, newest first, whether the script ends normally, fails under set -e
# or is interrupted. Loop devices and mounts must never outlive the script that made them.
RG_DEFERRED=()
rg_defer() { RG_DEFERRED+=("$*"); }
rg_run_deferred() {
  local i
  for ((i = ${#RG_DEFERRED[@]} - 1; i >= 0; i--)); do eval "${RG_DEFERRED[i]}" || true; done
  RG_DEFERRED=()
}
trap rg_run_deferred EXIT
# A signal becomes an ordinary exit, so the EXIT trap does the cleanup once.
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# rg_undo_now TEXT: runs now, and forgets, the deferred commands that mention TEXT (a mount point, a loop device),
# so an exit later cannot detach a loop device another process has been given in the meantime.
rg_undo_now() {
  local i keep=()
  for ((i = ${#RG_DEFERRED[@]} - 1; i >= 0; i--)); do
    if [[ ${RG_DEFERRED[i]} == *"$1"* ]]; then
      eval "${RG_DEFERRED[i]}" || true
    else
      keep=("${RG_DEFERRED[i]}" "${keep[@]}")
    fi
  done
  RG_DEFERRED=("${keep[@]}")
}

# rg_tmpdir VAR: a scratch folder removed at exit (after whatever is mounted below it).
rg_tmpdir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/vdkit-rg.XXXXXX")
  rg_defer "rm -rf --one-file-system '$d'"
  printf -v "$1" %s "$d"
}

# rg_umount_below DIR: unmounts everything at or below DIR, deepest first (debootstrap and chroots leave
# proc/sys/dev mounts behind when they fail half-way).
rg_umount_below() {
  local dir mp
  dir=$(realpath -m "$1")
  findmnt -rn -o TARGET | awk -v d="$dir" '$0 == d || index($0, d "/") == 1' | sort -r |
    while read -r mp; do umount "$mp" 2>/dev/null || umount -l "$mp" || true; done
}

# rg_loop VAR IMAGE OFFSET SIZE: attaches one partition of IMAGE to a loop device (by offset, since partition
# nodes of `losetup -P` need udev, which a container may lack), names it in VAR, and detaches it at exit. Not a
# command substitution: the undo must be registered in this shell, not in a subshell.
rg_loop() {
  local dev
  dev=$(losetup --find --show --offset "$3" --sizelimit "$4" "$2")
  rg_defer "losetup -d '$dev'"
  printf -v "$1" %s "$dev"
}

# rg_mount [MOUNT OPTIONS...] DEV DIR: mount(8) arguments as they are; mounted until exit.
rg_mount() {
  local dir=${*: -1}
  mkdir -p "$dir"
  mount "$@"
  rg_defer "rg_umount_below '$dir'"
}

# The Debian mirror apt is configured with for this suite: the one this machine can reach (other repositories in
# the same lists are skipped by their suite). VDKIT_DEBIAN_MIRROR overrides.
rg_mirror() {
  if [ -n "${VDKIT_DEBIAN_MIRROR:-}" ]; then echo "$VDKIT_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$({
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v s="$RG_SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z+]+:/ && $(i + 1) == s) print $i }'
    # deb822 stanzas: a URIs line counts when its stanza's Suites names the suite and it is not disabled.
    cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v s="$RG_SUITE" -v RS= '
      tolower($0) !~ /\nenabled: *no/ && $0 ~ ("(^|\n)Suites:([^\n]* )?" s "( |\n|$)") {
        if (match($0, /(^|\n)URIs: *[^ \n]+/)) {
          u = substr($0, RSTART, RLENGTH); sub(/^\n?URIs: */, "", u); print u
        } }'
  } | sed -n 1p)
  echo "${uri:-http://deb.debian.org/debian}"
}

# The cached tree's file name: keyed by build-rootfs itself, which holds the package list and every step, so any
# change to how the tree is made makes a new one.
rg_rootfs_tarball() {
  local key
  key=$(sha256sum "$RG_DIR/build-rootfs" | cut -c1-16)
  echo "$RG_CACHE/rootfs-$RG_SUITE-$key.tar.zst"
}

# rg_install_marker ROOT: the vdkit-marker unit every layout carries. Ordered after local-fs.target, it prints on
# ttyS0 what boot-check judges a boot by (its VDKIT-* lines; keep the two in step) and powers off, so a boot that
# works ends by itself. It writes to ttyS0 directly: the fixed guest's console is checked separately.
rg_install_marker() {
  local root=$1
  cat >"$root/usr/local/sbin/vdkit-marker" <<'EOF'
#!/bin/sh
# Reports on the serial line what boot-check judges a boot by, then powers off so every boot ends by itself.
exec >/dev/ttyS0 2>&1
echo "VDKIT-BOOT-OK $(uname -r)"
n=0
while read -r spec mp type opts rest; do
  case $spec in '' | '#'*) continue ;; esac
  case $type in swap) continue ;; esac
  case ",$opts," in *,noauto,*) continue ;; esac
  n=$((n + 1))
  if src=$(findmnt -n -f -o SOURCE --mountpoint "$mp"); then
    echo "VDKIT-MOUNT $mp $src mounted"
  else
    echo "VDKIT-MOUNT $mp $spec MISSING"
  fi
done </etc/fstab
echo "VDKIT-FSTAB $n"
echo "VDKIT-ROOT $(findmnt -n -f -o OPTIONS / | cut -d, -f1)"
echo "VDKIT-CONSOLE $(cat /sys/class/tty/console/active 2>/dev/null)"
echo "VDKIT-CMDLINE $(cat /proc/cmdline)"
# networking.service has run (ordering), but give a slow DHCP answer a moment before reporting.
i=0
while [ $i -lt 20 ] && [ -z "$(ip -4 -o addr show scope global)" ]; do sleep 1; i=$((i + 1)); done
echo "VDKIT-NET $(ip -4 -o addr show scope global | awk '{print $2 "=" $4}' | tr '\n' ' ')"
echo "VDKIT-FAILED-UNITS $(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
echo "VDKIT-BOOT-END"
systemctl poweroff
EOF
  chmod 755 "$root/usr/local/sbin/vdkit-marker"
  cat >"$root/etc/systemd/system/vdkit-marker.service" <<'EOF'
[Unit]
Description=vdkit real-guest boot marker
After=local-fs.target networking.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vdkit-marker

[Install]
WantedBy=multi-user.target
EOF
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/vdkit-marker.service "$root/etc/systemd/system/multi-user.target.wants/"
  # ttyS0 is the marker's: a serial getty there (console=ttyS0 makes one) hangs the line up when it starts, so a
  # marker still writing loses the rest of its report, and on a loaded machine its wait for dev-ttyS0.device times
  # out, which reads as a failed boot. Nobody logs in to these guests.
  ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
}
