#!/usr/bin/env bash
# demo.sh - build rasterfs, mount the bundled sample rasters and show a
# virtual output being computed on first access and served from the cache
# afterwards.
#
#   scripts/demo.sh [--unmount] [MOUNTPOINT]
#
# MOUNTPOINT defaults to ./mnt; the cache store is ./.demo-cache (or
# $RASTERFS_DEMO_CACHE).  The mount is left up for you to explore unless
# --unmount is given.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

unmount=0
mnt=
for arg in "$@"; do
	case $arg in
	--unmount) unmount=1 ;;
	-h | --help)
		sed -n '2,10p' "$0"
		exit 0
		;;
	-*)
		echo "demo: unknown option '$arg' (try --help)" >&2
		exit 2
		;;
	*) mnt=$arg ;;
	esac
done
mnt=${mnt:-$root/mnt}
cache=${RASTERFS_DEMO_CACHE:-$root/.demo-cache}
src=$root/tests/data
name='srtm1_N48W125_crop.tif@proj=EPSG:3857@focal=5,max'

bash scripts/setup.sh

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() {
	printf '$ %s\n' "$*"
	"$@"
}

mkdir -p "$mnt" "$cache"
mnt=$(cd "$mnt" && pwd)
if mountpoint -q "$mnt"; then
	if awk -v m="$mnt" '$2 == m { print $1, $3 }' /proc/mounts |
		grep -q rasterfs; then
		step "an earlier demo mount is still up at $mnt; unmounting it"
		fusermount3 -u "$mnt"
	else
		echo "demo: $mnt is already a mount point of something else" >&2
		exit 1
	fi
fi

step "mount $src at $mnt (cache store: $cache)"
# The daemon's start-up messages go to a log file, so that a pipe reading
# this script's output (demo.sh | tee) is not held open by the daemon.
log=$root/build/demo-rasterfs.log
printf '$ %s\n' "build/rasterfs $src $mnt -o cache=$cache"
if ! build/rasterfs "$src" "$mnt" -o "cache=$cache" >"$log" 2>&1; then
	cat "$log" >&2
	echo "demo: rasterfs failed to mount $mnt" >&2
	exit 1
fi
for _ in $(seq 100); do
	mountpoint -q "$mnt" && break
	sleep 0.1
done
if ! mountpoint -q "$mnt"; then
	echo "demo: rasterfs did not mount $mnt (see the messages above, or" \
		"run it in the foreground: build/rasterfs -f $src $mnt)" >&2
	exit 1
fi

step "the mount shows the source tree as it is"
run ls -l "$mnt"

step "a virtual name: lookup and stat never compute (size 0 until opened)"
run ls -l "$mnt/$name"
if [[ $(stat -c %s "$mnt/$name") -ne 0 ]]; then
	echo "(already in the cache store from an earlier demo; remove $cache" \
		"to see it computed again)"
fi

step "the first open computes it (reproject, then 5x5 focal maximum)"
# gdalinfo's output without the long WKT of the CRS.
short_gdalinfo() {
	printf '$ gdalinfo %s\n' "$*"
	gdalinfo "$@" | awk '
		/^Coordinate System is:/ { print "Coordinate System is: (WKT left out)"; skip = 1; next }
		skip && /^[^ ]/ { skip = 0 }
		!skip'
}
t0=${EPOCHREALTIME/./}
short_gdalinfo -stats "$mnt/$name"
t1=${EPOCHREALTIME/./}
echo "first access: $(((t1 - t0) / 1000)) ms"

step "now stat sees the exact size; later reads come from the cache"
run ls -l "$mnt/$name"
t0=${EPOCHREALTIME/./}
short_gdalinfo "$mnt/$name" >/dev/null
t1=${EPOCHREALTIME/./}
echo "second access: $(((t1 - t0) / 1000)) ms"

step "what the mount did"
run cat "$mnt/.rasterfs/stats"
echo

if ((unmount)); then
	step "unmount"
	run fusermount3 -u "$mnt"
else
	step "the mount stays up: try other names, e.g."
	cat <<EOT
    gdalinfo '$mnt/opengeos_dtm.tif@focal=5,max,circle'
    gdal_translate '$mnt/srtm1_N48W125_crop.tif@proj=EPSG:32610,res=30@reclass=-inf:1:0,1:200:1,200:inf:2' /tmp/classes.tif
    cp '$mnt/sub/dem.tif@focal=3' /tmp/
Unmount with:
    fusermount3 -u '$mnt'
EOT
fi
