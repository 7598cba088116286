#!/usr/bin/env bash
# bench_cluster.sh - the cluster parts of rasterfs (issue 13) measured, each
# figure a ratio against a baseline measured in the same run on the same
# machine (as scripts/bench.sh).  docs/cluster.md quotes a run.
#
#   scripts/bench_cluster.sh [--no-slurm]
#
#  1. cold `rasterfs run SRC@CHAIN OUT` vs the same output read cold
#     through a mount (a fresh empty store each round);
#  2. a second mount with an empty local store reading an output a first
#     mount published to the shared tier, vs computing it (and the second
#     mount's jobs_started stays 0);
#  3. the content hash: its cost per GiB of source the first time (from
#     the mount's log line, and the open that pays it vs one that does
#     not), its reuse (content_hashes unchanged), against `cat` of the
#     same file (the read alone);
#  4. a 20-task `rasterfs warm --slurm --wait` on a private single-node
#     Slurm cluster (tests/cluster/slurm.py) end to end vs `rasterfs warm
#     --wait` of the same 20 outputs on one mount (workers=2).
#
# Inputs: ../shared/data/srtm1_N48W125.tif (3601x3601 Int16) when present,
# else tests/data/srtm1_N48W125_crop.tif.  Needs a built tree, root (FUSE,
# and Slurm's daemons for 4), and for 4 Debian's slurm-wlm and munge
# (scripts/setup.sh); without them 4 says SKIP and why.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/build/rasterfs
py=/usr/bin/python3
slurm=1
for arg in "$@"; do
	case $arg in
	--no-slurm) slurm=0 ;;
	*) echo "bench_cluster: unknown option '$arg'" >&2; exit 2 ;;
	esac
done
[ -x "$bin" ] || bash "$here/scripts/setup.sh" >/dev/null

work=$(mktemp -d /tmp/rasterfs-bench-cluster.XXXXXX)
src=$work/src
mkdir -p "$src"
mounts=() pids=()

mount_fs() { # MNT OPTIONS: a foreground daemon, waited for
	mkdir -p "$1"
	"$bin" -f "$src" "$1" -o "workers=2,$2" 2>>"$work/rasterfs.log" &
	pids+=($!)
	mounts+=("$1")
	for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done
	echo "bench_cluster: mount $1 did not come up; log:" >&2
	tail -20 "$work/rasterfs.log" >&2
	exit 1
}
unmount_all() {
	for m in "${mounts[@]}"; do
		if mountpoint -q "$m" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		fi
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done
	mounts=() pids=()
}
cleanup() { unmount_all; rm -rf "$work"; }
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
timeit() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); echo "$t1 - $t0" | bc -l; }
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }
report() { # name value baseline
	printf '%-62s %8.3f s vs %8.3f s  ratio %s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"
}
stat_of() { # MNT counter
	$py -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$1/.rasterfs/stats" "$2"
}

dem=${RASTERFS_BENCH_DEM:-$here/../shared/data/srtm1_N48W125.tif}
[ -f "$dem" ] || dem=$here/tests/data/srtm1_N48W125_crop.tif
cp "$dem" "$src/dem.tif"
chain=@focal=5,median
echo "rasterfs cluster benchmark on $(nproc) cores, input $(basename "$dem")" \
	"($(gdalinfo "$dem" | sed -n 's/^Size is //p')), chain $chain"
echo

# --- 1. run vs a mount, both cold ----------------------------------------
t_run= t_mnt=
for round in 1 2 3; do
	t=$(timeit "$bin" run --no-progress "$src/dem.tif$chain" "$work/out.tif")
	t_run=$(min "$t_run" "$t")
	rm -f "$work/out.tif"
	mount_fs "$work/m1-$round" "cache=$work/c1-$round"
	stat "$work/m1-$round/dem.tif@slope" >/dev/null  # daemon warmed up
	t=$(timeit cat "$work/m1-$round/dem.tif$chain")
	t_mnt=$(min "$t_mnt" "$t")
	unmount_all
done
report "1. cold rasterfs run (process, worker, OUT) / cold mount read" "$t_run" "$t_mnt"

# --- 2. the shared tier: fetched vs computed -------------------------------
t_comp= t_fetch= jobs_b=
for round in 1 2 3; do
	sh=$work/shared-$round
	mount_fs "$work/a-$round" "cache=$work/ca-$round,shared=$sh"
	mount_fs "$work/b-$round" "cache=$work/cb-$round,shared=$sh"
	stat "$work/a-$round/dem.tif@slope" "$work/b-$round/dem.tif@slope" >/dev/null
	t=$(timeit cat "$work/a-$round/dem.tif$chain")
	t_comp=$(min "$t_comp" "$t")
	for _ in $(seq 100); do
		[ "$(stat_of "$work/a-$round" shared_published)" = 1 ] && break
		sleep 0.1
	done
	t=$(timeit cat "$work/b-$round/dem.tif$chain")
	t_fetch=$(min "$t_fetch" "$t")
	cmp -s "$work/a-$round/dem.tif$chain" "$work/b-$round/dem.tif$chain" ||
		{ echo "bench_cluster: B's bytes differ from A's" >&2; exit 1; }
	jobs_b="$jobs_b $(stat_of "$work/b-$round" jobs_started)"
	unmount_all
done
report "2. mount B reads A's published output / mount A computes it" "$t_fetch" "$t_comp"
echo "   mount B's jobs_started in each round:$jobs_b (B's bytes = A's: cmp)"

# --- 3. the content hash --------------------------------------------------
# A larger source: the tile upsampled 3x (about 9 times the bytes), so the
# hash is not lost in the fetch.  Each round: mount B (empty store) opens
# two outputs mount A published: the first pays the content hash, the
# second reuses it (content_hashes stays 1).
gdalwarp -q -overwrite -r near -ts "$(( $(gdalinfo "$dem" | sed -n 's/^Size is \([0-9]*\),.*/\1/p') * 3 ))" 0 \
	-co TILED=YES "$dem" "$src/big.tif"
size=$(stat -c %s "$src/big.tif")
cat "$src/big.tif" >/dev/null    # in the page cache, as the hash finds it
t_cat=
for _ in 1 2 3; do t_cat=$(min "$t_cat" "$(timeit cat "$src/big.tif")"); done
sh=$work/shared-hash
mount_fs "$work/ha" "cache=$work/cha,shared=$sh"
for c in @size=400,400 @size=400,400,bilinear; do cat "$work/ha/big.tif$c" >/dev/null; done
for _ in $(seq 100); do
	[ "$(stat_of "$work/ha" shared_published)" = 2 ] && break; sleep 0.1
done
# evict one file's pages (posix_fadvise DONTNEED): a cold read of it
# without dropping the whole machine's caches
evict() { $py -c 'import os,sys; fd=os.open(sys.argv[1],os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)' "$1"; }
t_cat_cold=
for _ in 1 2 3; do evict "$src/big.tif"; t_cat_cold=$(min "$t_cat_cold" "$(timeit cat "$src/big.tif")"); done
t_first= t_first_cold= t_reuse= hashes=
for round in 1 2 3 4 5 6; do
	mount_fs "$work/hb-$round" "cache=$work/chb-$round,shared=$sh"
	stat "$work/hb-$round/dem.tif@slope" >/dev/null
	# rounds 4-6: the source's pages evicted first (the hash reads the disk)
	[ $round -le 3 ] || evict "$src/big.tif"
	t=$(timeit cat "$work/hb-$round/big.tif@size=400,400")
	[ $round -le 3 ] && t_first=$(min "$t_first" "$t")
	[ $round -le 3 ] || t_first_cold=$(min "${t_first_cold:-}" "$t")
	t=$(timeit cat "$work/hb-$round/big.tif@size=400,400,bilinear")
	t_reuse=$(min "$t_reuse" "$t")
	hashes="$hashes $(stat_of "$work/hb-$round" content_hashes)/$(stat_of "$work/hb-$round" jobs_started)"
done
unmount_all
# the hash itself, from the log lines ("content hash of big.tif: N bytes in
# T s"): the first three rounds' (page cache), then the last three (cold)
# (mount A's hash, when it published, comes first)
hash_times=$(sed -n 's/.*content hash of big.tif: [0-9]* bytes in \([0-9.]*\) s.*/\1/p' "$work/rasterfs.log" | tail -6)
[ "$(echo "$hash_times" | wc -l)" = 6 ] || { echo "bench_cluster: expected 6 content hashes, got: $hash_times" >&2; exit 1; }
t_hash=$(echo "$hash_times" | head -3 | sort -n | head -1)
t_hash_cold=$(echo "$hash_times" | tail -3 | sort -n | head -1)
printf '3. source %s: %d bytes (%.2f GiB)\n' big.tif "$size" "$(echo "$size / 1073741824" | bc -l)"
report "   content hash (best, from the log) / cat of the source" "$t_hash" "$t_cat"
printf '   content hash: %.2f s per GiB (page cache); cat: %.2f s per GiB\n' \
	"$(echo "$t_hash * 1073741824 / $size" | bc -l)" "$(echo "$t_cat * 1073741824 / $size" | bc -l)"
report "   content hash, source not in the page cache / cold cat" "$t_hash_cold" "$t_cat_cold"
printf '   content hash from disk: %.2f s per GiB; cold cat: %.2f s per GiB\n' \
	"$(echo "$t_hash_cold * 1073741824 / $size" | bc -l)" "$(echo "$t_cat_cold * 1073741824 / $size" | bc -l)"
report "   B's first open (hash + fetch) / second open (fetch only)" "$t_first" "$t_reuse"
report "   the same, the source's pages evicted first" "$t_first_cold" "$t_reuse"
echo "   B's content_hashes/jobs_started after both opens, each round:$hashes"

# --- 4. Slurm: 20 tasks ----------------------------------------------------
if [ $slurm = 0 ]; then
	echo "4. skipped (--no-slurm)"
	exit 0
fi
# 20 different sources (different bytes: copies would share portable keys)
mkdir -p "$src/tiles"
w=$(gdalinfo "$dem" | sed -n 's/^Size is \([0-9]*\),.*/\1/p')
step=$(( (w - 900) / 19 ))
for i in $(seq 0 19); do
	gdal_translate -q -srcwin $((i * step)) $((i * step)) 900 900 -co TILED=YES \
		"$dem" "$src/tiles/t$(printf %02d "$i").tif"
done
chain4=@focal=7,median
mount_fs "$work/w1" "cache=$work/cw1"
t_warm=$(timeit "$bin" warm --wait "$work/w1/tiles/*.tif$chain4")
[ "$(stat_of "$work/w1" jobs_done)" = 20 ] || { echo "bench_cluster: warm did not do 20" >&2; exit 1; }
unmount_all
sh=$work/shared-slurm
mount_fs "$work/w2" "cache=$work/cw2,shared=$sh"
cat >"$work/slurm-part.sh" <<EOF
set -e
t0=\$(date +%s.%N)
"$bin" warm --slurm --wait "$work/w2/tiles/*.tif$chain4" >"$work/warm-slurm.out"
t1=\$(date +%s.%N)
echo "\$t1 - \$t0" | bc -l >"$work/t_slurm"
EOF
set +e
$py "$here/tests/cluster/slurm.py" bash "$work/slurm-part.sh" 2>"$work/slurm.err"
st=$?
set -e
if [ $st = 77 ]; then
	echo "4. SKIP: $(grep SKIP "$work/slurm.err")"
	exit 0
elif [ $st != 0 ]; then
	echo "bench_cluster: warm --slurm failed ($st):" >&2
	cat "$work/slurm.err" "$work/warm-slurm.out" >&2
	exit 1
fi
t_slurm=$(cat "$work/t_slurm")
report "4. warm --slurm --wait, 20 tasks / warm --wait on one mount" "$t_slurm" "$t_warm"
$py - "$sh"/runs/*/results <<'PYEOF'
import json, statistics, sys
from pathlib import Path
secs = sorted(json.loads(p.read_text())["seconds"] for p in Path(sys.argv[1]).glob("*.json"))
print("   each task's own rasterfs run: median %.2f s, max %.2f s, sum %.2f s (%d results)"
      % (statistics.median(secs), secs[-1], sum(secs), len(secs)))
PYEOF
echo "   $(tail -1 "$work/warm-slurm.out"); cluster start $(sed -n 's/.*cluster up in \([0-9.]*\) s.*/\1/p' "$work/slurm.err") s (not counted)"
# and an empty mount serves all 20 with no job
mount_fs "$work/w3" "cache=$work/cw3,shared=$sh"
read_all() { for f in "$src"/tiles/*.tif; do cat "$work/w3/tiles/$(basename "$f")$chain4"; done; }
t_serve=$(timeit read_all)
report "   an empty mount reads all 20 from the tier / warm --wait" "$t_serve" "$t_warm"
echo "   its jobs_started: $(stat_of "$work/w3" jobs_started), shared_hits: $(stat_of "$work/w3" shared_hits)"
