#!/usr/bin/env bash
# setup.sh - install what rasterfs needs (Debian 12), then configure and build.
#
# Idempotent: packages already installed are left alone, an existing build
# directory is reused.  As root, missing packages are installed with apt-get;
# otherwise the apt-get command to run is printed and the script stops.
set -euo pipefail

cd "$(dirname "$0")/.."

PKGS=(
	build-essential meson ninja-build pkg-config
	libfuse3-dev fuse3
	libgdal-dev gdal-bin libproj-dev
	liblmdb-dev lmdb-utils libxxhash-dev
	python3-pytest python3-gdal python3-numpy python3-scipy python3-rasterio
	attr bc libtiff-tools
	slurm-wlm munge
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

if [[ ! -f build/build.ninja ]]; then
	echo "setup: meson setup build"
	meson setup build
fi
echo "setup: meson compile -C build"
meson compile -C build
echo "setup: built $(pwd)/build/rasterfs"
