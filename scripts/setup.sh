#!/usr/bin/env bash
# setup.sh - install what rasterfs needs (Debian 12), then configure and build.
#
# Idempotent: packages already installed are left alone, an existing build
# directory is reused.  As root, missing packages are installed with apt-get;
# otherwise the apt-get command to run is printed and the script stops.
#
# --install: then `meson install` the build (prefix /usr/local unless the
# build was configured with another) and, as root, link
# /sbin/mount.fuse.rasterfs to the installed helper, where mount(8) looks
# for it (docs/install.md, "Installing").
set -euo pipefail

cd "$(dirname "$0")/.."

INSTALL=0
case "${1:-}" in
--install) INSTALL=1 ;;
"") ;;
*)
	echo "usage: $0 [--install]" >&2
	exit 2
	;;
esac

PKGS=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3
	libgdal-dev gdal-bin libproj-dev
	liblmdb-dev lmdb-utils libxxhash-dev
	python3-pytest python3-gdal python3-numpy python3-scipy python3-rasterio
	attr bc libtiff-tools rsync
	# QGIS 3.22's Python bindings (with its GDAL provider): test_qgis.py
	# runs QGIS headless on a mount, the desktop client most users have;
	# strace counts the bytes a client reads and the files it tries to write.
	python3-qgis strace
	slurm-wlm munge
	# systemd-analyze verify of the installed unit (test_install.py; it
	# needs no systemd as PID 1)
	systemd
	# tests/mount/test_portable.py: portable names with rsync and GRASS
	rsync grass-core
	# tests/mount/test_doc.py: the man page rendered (man, groff) and the
	# bash completion loaded as bash-completion loads it
	man-db groff-base bash-completion
	# tests/fuzz (CC=clang, -Dfuzz=true) and `meson test --setup valgrind`
	clang libclang-rt-dev valgrind
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]})); then
	echo "setup: missing Debian packages: ${missing[*]}"
	if [[ $(id -u) -eq 0 ]]; then
		export DEBIAN_FRONTEND=noninteractive
		# The postinsts of munge, slurmd and slurmctld start their system
		# daemons through invoke-rc.d where they can (a known runlevel or
		# systemd).  The cluster tests never use them (tests/cluster/slurm.py
		# starts private ones on their own socket and ports), so keep idle
		# system daemons off the machine: a policy-rc.d of our own forbids
		# service starts during this install, unless one is there already.
		policy=/usr/sbin/policy-rc.d
		own_policy=0
		if [[ ! -e $policy ]]; then
			printf '#!/bin/sh\n# setup.sh: no service starts during its install\nexit 101\n' >"$policy"
			chmod 755 "$policy"
			own_policy=1
			trap 'rm -f "$policy"' EXIT
		fi
		apt-get update
		apt-get install -y --no-install-recommends "${missing[@]}"
		if ((own_policy)); then
			rm -f "$policy"
			trap - EXIT
		fi
	else
		echo "setup: not root; install them with:" >&2
		echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
else
	echo "setup: all ${#PKGS[@]} Debian packages are installed"
fi

if [[ ! -e /dev/fuse ]]; then
	echo "setup: warning: /dev/fuse is missing; mounts will fail" \
		"(in a container, run it with --device /dev/fuse --cap-add SYS_ADMIN)" >&2
fi

# libfuse >= 3.16 for FUSE passthrough (issue 14; Debian 12 has 3.14).  When
# the vendored copy of its tag fuse-3.18.1 sits beside the repository (as in
# CI), unpack it where subprojects/libfuse.wrap points, so meson builds it
# without fetching anything.  Without it, meson fetches the tag (network) or
# builds against the system fuse3 with passthrough compiled out.
LIBFUSE_TGZ=../shared/vendor/libfuse-fuse-3.18.1.tar.gz
LIBFUSE_DIR=subprojects/libfuse-fuse-3.18.1
# The hash that ../shared/vendor/README.md states for the tarball.
LIBFUSE_SHA256=09acf422eae0efa6d201a9035628328cac0e3583e39a7f47583c9782bea77733
if [[ ! -d $LIBFUSE_DIR && -f $LIBFUSE_TGZ ]]; then
	sum=$(sha256sum "$LIBFUSE_TGZ" | cut -d' ' -f1)
	if [[ $sum != "$LIBFUSE_SHA256" ]] ||
		! grep -q "$LIBFUSE_SHA256" "$(dirname "$LIBFUSE_TGZ")/README.md"; then
		echo "setup: $LIBFUSE_TGZ has sha256 $sum; expected" \
			"$LIBFUSE_SHA256, as its README.md states: not using it" >&2
		exit 1
	fi
	# Unpack beside, then rename: meson never sees a half-unpacked tree.
	tmp=$(mktemp -d subprojects/.unpack.XXXXXX)
	tar -xzf "$LIBFUSE_TGZ" -C "$tmp"
	mv "$tmp/libfuse-fuse-3.18.1" "$LIBFUSE_DIR"
	rmdir "$tmp"
	echo "setup: unpacked libfuse 3.18.1 into $LIBFUSE_DIR"
fi

if [[ ! -f build/build.ninja ]]; then
	echo "setup: meson setup build"
	meson setup build
fi
echo "setup: meson compile -C build"
meson compile -C build
echo "setup: built $(pwd)/build/rasterfs"

if ((INSTALL)); then
	echo "setup: meson install -C build"
	meson install -C build --skip-subprojects --no-rebuild
	prefix=$(meson introspect --buildoptions build |
		python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
	sbindir=$(meson introspect --buildoptions build |
		python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "sbindir"))')
	[[ $sbindir == /* ]] || sbindir=$prefix/$sbindir
	helper=$sbindir/mount.fuse.rasterfs
	# mount(8) runs helpers from /sbin (and /sbin/fs.d, /sbin/fs) only,
	# by absolute path: for a prefix other than /usr, link it there.
	if [[ $(realpath -m "$sbindir") != "$(realpath -m /sbin)" ]]; then
		if [[ $(id -u) -eq 0 ]]; then
			ln -sfn "$helper" /sbin/mount.fuse.rasterfs
			echo "setup: /sbin/mount.fuse.rasterfs -> $helper"
		else
			echo "setup: as root, link the mount helper where mount(8)" \
				"looks: ln -s $helper /sbin/mount.fuse.rasterfs" >&2
		fi
	fi
	echo "setup: installed; mount -t fuse.rasterfs SOURCE_DIR MOUNTPOINT" \
		"-o cache=DIR works now"
fi
