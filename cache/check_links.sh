#!/bin/sh
# check_links.sh - the cache store links only LMDB and xxHash: no libfuse,
# no GDAL (nor PROJ, which comes with GDAL).
#
# usage: check_links.sh STORE_PROGRAM CONTROL_PROGRAM
#   STORE_PROGRAM (test_store) links the cache store alone: it must name
#   none of them in DT_NEEDED, and hold no fuse_*, GDAL*, CPL*, OGR* or
#   OSR* symbol, defined or not (libfuse may be linked statically from the
#   meson subproject, which DT_NEEDED would not show).
#   CONTROL_PROGRAM (rasterfs) links both: the same look must find libfuse
#   and GDAL there, or it is blind and proves nothing.
# READELF and NM name the tools (default: readelf, nm).
set -u
READELF=${READELF:-readelf}
NM=${NM:-nm}
LIBS='lib(gdal|fuse3?|proj)\.so'
SYMS='^(fuse_|GDAL|CPL|OGR|OSR)'

# Prints what of libfuse and GDAL $1 links, one line each; fails if the
# tools cannot read it.
linked() {
	needed=$("$READELF" -d "$1") || return 2
	syms=$("$NM" "$1") || return 2
	printf '%s\n' "$needed" | grep NEEDED | grep -E "$LIBS" |
		sed 's/^.*\[\(.*\)\]$/DT_NEEDED \1/'
	printf '%s\n' "$syms" | awk '{ print $NF }' | grep -E "$SYMS" |
		sed 's/^/symbol /' | sort -u
	return 0
}

[ $# -eq 2 ] || { echo "usage: $0 STORE_PROGRAM CONTROL_PROGRAM" >&2; exit 2; }
store=$(linked "$1") || { echo "cannot read $1" >&2; exit 2; }
control=$(linked "$2") || { echo "cannot read $2" >&2; exit 2; }

status=0
if [ -n "$store" ]; then
	echo "FAIL: $1 links libfuse or GDAL:"
	printf '%s\n' "$store" | head -20
	status=1
fi
for what in fuse_ 'gdal|GDAL'; do
	if ! printf '%s\n' "$control" | grep -Eq "$what"; then
		echo "FAIL: the check finds no $what in $2, which links it:" \
			"it cannot see what it looks for"
		status=1
	fi
done
[ $status -eq 0 ] && echo "ok: $1 links neither libfuse nor GDAL" \
	"(in $2 the same look finds $(printf '%s\n' "$control" | wc -l)" \
	"DT_NEEDED entries and symbols of theirs)"
exit $status
