#!/usr/bin/env bash
# Build the systemd base image for local hosts: debootstrap a Debian rootfs, docker-import it.
# Usage: images/base/build.sh IMAGE:TAG   (scripts/setup.sh calls it with the recipe's hash tag)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib/common.sh
source "$here/../../scripts/lib/common.sh"

[[ $# -eq 1 ]] || die "usage: $0 IMAGE:TAG"
image=$1
suite=bookworm

# The mirror this machine's apt already uses is the one known to be reachable.
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -E '^[[:space:]]*(URIs:|deb[[:space:]])' | grep -v -- '-security' |
    grep -oE 'https?://[^[:space:]]+/debian/?' | head -n1 || true)
  printf '%s\n' "${K3SDAAS_DEBIAN_MIRROR:-${uri:-http://deb.debian.org/debian}}"
}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/k3sdaas-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mirror=$(debian_mirror)
packages=$(grep -vE '^[[:space:]]*(#|$)' "$here/packages.txt" | paste -sd, -)

log=$here/../../.state/base-image-build.log
mkdir -p "$(dirname "$log")"
say "debootstrap $suite from $mirror (full log: .state/base-image-build.log)"
# Show milestones and downloads; per-package unpack/configure lines only go to the log.
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" 2>&1 | tee "$log" |
  grep --line-buffered -vE '^I: (Validating|Extracting|Unpacking|Configuring) [a-z0-9]'; then
  die "debootstrap failed; last lines of $log: $(tail -n 5 "$log")"
fi
[[ -x $rootfs/lib/systemd/systemd ]] || die "debootstrap did not produce a rootfs with systemd (see output above)"

say "configuring the rootfs for systemd in a container"
# Each container gets its own machine id at first boot.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
ln -sf /lib/systemd/system/multi-user.target "$rootfs/etc/systemd/system/default.target"
# Units that need hardware or host privileges a container lacks, masked so boot ends "running"; and nginx,
# which only the master enclave runs, as a child of the master.
for unit in \
  getty@tty1.service console-getty.service serial-getty@.service \
  systemd-remount-fs.service systemd-udevd.service systemd-modules-load.service \
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
  systemd-firstboot.service systemd-hwdb-update.service nginx.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# Smaller image: package caches and docs are never needed inside a test host.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

rootfs_image=${image%%:*}-rootfs:${image#*:}
say "importing the rootfs as $rootfs_image"
tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
  docker_cli import - "$rootfs_image" >/dev/null
say "adding systemd metadata (images/base/Dockerfile) as $image"
docker_cli build -q --build-arg ROOTFS_IMAGE="$rootfs_image" -t "$image" - <"$here/Dockerfile" >/dev/null
docker_cli rmi "$rootfs_image" >/dev/null
