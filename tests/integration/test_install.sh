#!/usr/bin/env bash
# vdkit as a package. `cmake --install` into a DESTDIR puts vdkit in usr/bin, the plugin in nbdkit's own plugin
# folder, the man page and the README under usr/share. `cpack -G DEB` makes vdkit_VERSION_ARCH.deb with the same
# files, a Depends that names nbdkit and a package for every library either binary links, and the extracted
# package works: every library resolves (ldd), vdkit describes a qcow2 made by qemu-img, and nbdkit serves it
# through the packaged plugin with the right size and bytes.
#
# Nothing on the machine changes: the staging, the package and its extraction all live in the scratch folder (the
# build tree's install_manifest.txt, which a DESTDIR install rewrites, is put back). That is the "clean machine"
# check we can make without a fresh VM: installing with dpkg on a shared machine would take the dpkg lock other
# people's apt-get needs and, while it lasts, change what `vdkit` and `nbdkit vdkit` mean to every other test and
# user. VDKIT_TEST_DPKG=1 (as root, with no vdkit installed) also installs the .deb with dpkg -i, runs
# `vdkit` and `nbdkit vdkit` from the system, and purges it on every way out.
source "$(dirname "$0")/lib.sh"
PLUGIN=$VDKIT_BUILD/nbd-plugin/nbdkit-vdkit-plugin.so
for tool in cmake cpack dpkg dpkg-deb ldd readelf qemu-img qemu-io nbdkit nbdinfo nbdcopy python3; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done
[ -x "$VDKIT" ] || skip "vdkit is not built ($VDKIT)"
[ -f "$PLUGIN" ] || skip "the plugin is not built ($PLUGIN)"
[ -f "$VDKIT_BUILD/CPackConfig.cmake" ] || skip "no CPackConfig.cmake in $VDKIT_BUILD"

version=$(sed -n 's/^project(vdkit VERSION \([0-9.]*\).*/\1/p' "$VDKIT_SRC/CMakeLists.txt")
arch=$(dpkg --print-architecture)
plugindir=$(nbdkit --dump-config | sed -n 's/^plugindir=//p')
man=
grep -q '^VDKIT_MAN:BOOL=ON' "$VDKIT_BUILD/CMakeCache.txt" && man=usr/share/man/man1/vdkit.1.gz

# Cleanup on every way out: the purge (when this test installed the package), the manifest, the scratch folder.
manifest=$VDKIT_BUILD/install_manifest.txt
[ -f "$manifest" ] && cp -p "$manifest" "$SCRATCH/manifest.saved"
DPKG_INSTALLED=
cleanup_install() {
  if [ -n "$DPKG_INSTALLED" ]; then
    dpkg --purge vdkit >/dev/null 2>&1 || echo "test_install: dpkg --purge vdkit failed; remove it by hand" >&2
  fi
  if [ -f "$SCRATCH/manifest.saved" ]; then
    cp -p "$SCRATCH/manifest.saved" "$manifest"
  else
    rm -f "$manifest"
  fi
  cleanup_scratch
}
trap cleanup_install EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# A qcow2 with data at both ends and a hole between, and its bytes as qemu-img reads them.
img=$SCRATCH/disk.qcow2
size=$((64 << 20))
qemu-img create -q -f qcow2 "$img" "$size"
qemu-io -f qcow2 -c "write -P 0x5a 0 1M" -c "write -P 0xa5 $((size - (1 << 20))) 1M" "$img" >/dev/null
qemu-img convert -O raw "$img" "$SCRATCH/disk.raw"
want_sum=$(sha256sum <"$SCRATCH/disk.raw" | cut -d' ' -f1)
rm -f "$SCRATCH/disk.raw"

# serves_image PLUGIN: nbdkit serves $img through PLUGIN (a path or a name) with the right size and bytes.
serves_image() {
  local got
  got=$(nbdkit -U - "$1" file="$img" --run 'nbdinfo --size "$uri" && nbdcopy "$uri" - | sha256sum' 2>&1) || {
    echo "$got" >&2
    return 1
  }
  [ "$got" = "$size"$'\n'"$want_sum  -" ] || { echo "nbdkit $1: got '$got'" >&2; return 1; }
}
# describes_image VDKIT: VDKIT info --output=json names the format and the size.
describes_image() {
  "$1" info --output=json "$img" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["format"] == "qcow2" and j["virtual-size"] == int(sys.argv[1]), j' "$size"
}

# 1. cmake --install into a staging folder.
stage=$SCRATCH/stage
DESTDIR=$stage cmake --install "$VDKIT_BUILD" --prefix /usr >"$SCRATCH/install.log" 2>&1 || cat "$SCRATCH/install.log" >&2
check "install: vdkit in usr/bin" [ -x "$stage/usr/bin/vdkit" ]
check "install: the plugin in nbdkit's plugindir ($plugindir)" [ -f "$stage$plugindir/nbdkit-vdkit-plugin.so" ]
check "install: README in usr/share/doc/vdkit" [ -f "$stage/usr/share/doc/vdkit/README.md" ]
if [ -n "$man" ]; then
  check "install: the man page" [ -s "$stage/$man" ]
fi
outside=$(cd "$stage" && find . -type f ! -path './usr/*')
check "install: nothing outside usr/" [ -z "$outside" ]
check "install: staged vdkit runs" [ "$("$stage/usr/bin/vdkit" --version)" = "vdkit $version" ]

# 2. The package.
pkgdir=$SCRATCH/pkg
cpack -G DEB -B "$pkgdir" --config "$VDKIT_BUILD/CPackConfig.cmake" >"$SCRATCH/cpack.log" 2>&1 || cat "$SCRATCH/cpack.log" >&2
deb=$pkgdir/vdkit_${version}_${arch}.deb
check "cpack made $(basename "$deb")" [ -f "$deb" ]
[ -f "$deb" ] || { finish || true; exit 1; }
dpkg-deb -c "$deb" | awk '{print $NF}' >"$SCRATCH/contents"
for f in ./usr/bin/vdkit ".$plugindir/nbdkit-vdkit-plugin.so" ./usr/share/doc/vdkit/README.md ${man:+./$man}; do
  check "dpkg-deb -c lists $f" grep -qxF "$f" "$SCRATCH/contents"
done
field() { dpkg-deb -f "$deb" "$1"; }
check "Package: vdkit" [ "$(field Package)" = vdkit ]
check "Version: $version" [ "$(field Version)" = "$version" ]
check "Architecture: $arch" [ "$(field Architecture)" = "$arch" ]
check "Section: admin" [ "$(field Section)" = admin ]
check "Maintainer is set" [ -n "$(field Maintainer)" ]
check "Description has a summary and a body" [ "$(field Description | wc -l)" -gt 2 ]
depends=$(field Depends)
echo "Depends: $depends"
# The package names in Depends, without versions.
dep_names=$(echo "$depends" | tr ',|' '\n\n' | sed 's/(.*)//; s/:.*//; s/ //g' | grep -v '^$' | sort -u)
check "Depends names nbdkit" grep -qx nbdkit <<<"$dep_names"
check "Depends names libc6 (shlibdeps ran)" grep -qx libc6 <<<"$dep_names"

# 3. The extracted package on this machine's libraries.
root=$SCRATCH/root
dpkg-deb -x "$deb" "$root"
for bin in "$root/usr/bin/vdkit" "$root$plugindir/nbdkit-vdkit-plugin.so"; do
  name=${bin#"$root"}
  ldd "$bin" >"$SCRATCH/ldd" 2>&1 || true
  check "ldd $name: every library resolves" bash -c "! grep -q 'not found' '$SCRATCH/ldd' && grep -q '=> /' '$SCRATCH/ldd'"
  check "$name is stripped" bash -c "! readelf -S '$bin' | grep -q '\.debug_info'"
  # Each library the binary links directly must come from a package the .deb depends on.
  for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    # "lib => /path (addr)", or "/path (addr)" for the dynamic loader.
    path=$(awk -v l="$lib" '{ n = split($1, a, "/") }
      $1 == l && $3 ~ /^\// { print $3; exit }
      $1 ~ /^\// && a[n] == l { print $1; exit }' "$SCRATCH/ldd")
    owner=
    if [ -n "$path" ]; then
      # dpkg knows each library under one of its names: /lib or /usr/lib (merged /usr), or the real file.
      for p in "$path" "/usr$path" "${path#/usr}" "$(readlink -f "$path")"; do
        owner=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) || true
        [ -z "$owner" ] || break
      done
    fi
    check "$name links $lib (package '$owner'), which Depends names" grep -qx "$owner" <<<"$dep_names"
  done
done
check "the packaged vdkit prints its version" [ "$("$root/usr/bin/vdkit" --version)" = "vdkit $version" ]
check "the packaged vdkit describes a qcow2" describes_image "$root/usr/bin/vdkit"
check "nbdkit serves the qcow2 through the packaged plugin" serves_image "$root$plugindir/nbdkit-vdkit-plugin.so"
check "the packaged plugin calls itself vdkit (so \`nbdkit vdkit\` finds it in $plugindir)" \
  grep -qx name=vdkit <(nbdkit "$root$plugindir/nbdkit-vdkit-plugin.so" --dump-plugin)
got=$(VDKIT_NBD_PLUGIN= "$root/usr/bin/vdkit" serve "$img" --run 'nbdinfo --size "$uri"' 2>&1) || true
check "the packaged vdkit serve finds the packaged plugin beside it (got '$got')" [ "$got" = "$size" ]
if [ -n "$man" ]; then
  check "the man page has every subcommand's manual" \
    bash -c "zcat '$root/$man' | grep -q 'SUBCOMMANDS' && zcat '$root/$man' | grep -q 'vdkit umount'"
fi

# 4. Optionally, the real thing: dpkg -i, use, dpkg --purge.
if [ "${VDKIT_TEST_DPKG:-0}" = 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    fail "VDKIT_TEST_DPKG=1 needs root"
  elif dpkg-query -W -f='${Status}' vdkit 2>/dev/null | grep -q installed || [ -e /usr/bin/vdkit ] ||
    [ -e "$plugindir/nbdkit-vdkit-plugin.so" ]; then
    fail "VDKIT_TEST_DPKG=1: vdkit is already installed on this machine; not touching it"
  else
    DPKG_INSTALLED=1
    check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
    check "installed: vdkit --version" [ "$(/usr/bin/vdkit --version)" = "vdkit $version" ]
    check "installed: vdkit info" describes_image /usr/bin/vdkit
    check "installed: nbdkit vdkit serves the qcow2" serves_image vdkit
    check "installed: nbdkit vdkit --dump-plugin" grep -qx name=vdkit <(nbdkit vdkit --dump-plugin)
    check "dpkg --purge vdkit" dpkg --purge vdkit
    DPKG_INSTALLED=
    check "purged: no /usr/bin/vdkit" [ ! -e /usr/bin/vdkit ]
    check "purged: no plugin in $plugindir" [ ! -e "$plugindir/nbdkit-vdkit-plugin.so" ]
  fi
fi
finish
