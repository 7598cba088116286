#!/bin/bash
# bench_prefixes.sh - seconds to read S@proj=EPSG:32610,bilinear@focal=9 cold and after
# S@...@focal=5, with keep_prefixes=0 and 1 (workers=1, two rounds; md5 of each read)
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RASTERFS_BIN:-$here/build/rasterfs}
dem=${RASTERFS_BENCH_DEM:-$here/../shared/data/srtm1_N48W125.tif}
P="@proj=EPSG:32610,bilinear"
run() { # keep warm(0|1)
	w=$(mktemp -d /tmp/rasterfs-pfx.XXXXXX); src=$w/src; mnt=$w/mnt; cache=$w/cache; mkdir -p $src $mnt $cache
	cp "$dem" $src/dem.tif
	$bin -f $src $mnt -o cache=$cache,workers=1,keep_prefixes=$1 2>>$w/log &
	pid=$!
	for _ in $(seq 100); do mountpoint -q $mnt && break; sleep 0.05; done
	stat "$mnt/dem.tif@proj=EPSG:4326" >/dev/null 2>&1 || true
	if [ $2 = 1 ]; then cat "$mnt/dem.tif$P@focal=5" >/dev/null; fi
	t0=$(date +%s.%N); md5=$(md5sum < "$mnt/dem.tif$P@focal=9" | cut -c1-8); t1=$(date +%s.%N)
	printf 'keep_prefixes=%s after_focal5=%s  focal=9 read %.2f s  md5 %s\n' $1 $2 $(echo "$t1-$t0"|bc -l) $md5
	grep "done in" $w/log | sed 's/.*job/  job/'
	fusermount3 -u $mnt; wait $pid || true
	rm -rf $w
}
for r in 1 2; do for k in 0 1; do run $k 0; run $k 1; done; done  # both settings, two rounds
