#!/usr/bin/env bash
# test.sh - build (installing what is missing) and run every test suite:
# unit, mount and slow on build/ (libfuse 3.18 from subprojects/, FUSE
# passthrough compiled in), the mount-fuse suite on build-sys/ (Debian's
# libfuse 3.14, -Dpassthrough=disabled: the build most users get; the FUSE
# side's mount tests, tests/meson.build: the unit tests link no libfuse and
# the computation tests do not depend on it, so they would only repeat
# build/'s), then the unit suite again under AddressSanitizer + UBSan in
# build-asan/.  The exit code is nonzero if any suite failed; the last
# line counts the tests and says how long it all took.
#
#   scripts/test.sh            everything
#   scripts/test.sh --no-asan  skip the sanitizer build (or RFS_NO_ASAN=1)
set -euo pipefail

cd "$(dirname "$0")/.."

asan=1
for arg in "$@"; do
	case $arg in
	--no-asan) asan=0 ;;
	-h | --help)
		sed -n '2,12p' "$0"
		exit 0
		;;
	*)
		echo "test: unknown option '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done
[[ ${RFS_NO_ASAN:-0} == 1 ]] && asan=0

start=$SECONDS
bash scripts/setup.sh

rm -f build/meson-logs/testlog.json build-sys/meson-logs/testlog.json \
	build-asan/meson-logs/testlog.json
rc=0
echo "test: meson test -C build (suites: unit, mount, slow)"
meson test -C build --no-suite mount-fuse --print-errorlogs || rc=$?

# The mount suite runs its passthrough tests both ways in each build
# (tests/mount/test_passthrough.py); here the daemon has no passthrough
# at all, and every other test must pass on the path most mounts take.
if [[ ! -f build-sys/build.ninja ]]; then
	echo "test: meson setup build-sys -Dpassthrough=disabled"
	meson setup build-sys -Dpassthrough=disabled
fi
echo "test: FUSE-side mount tests with the system libfuse (build-sys)"
if ! meson compile -C build-sys ||
	! meson test -C build-sys --suite mount-fuse --print-errorlogs; then
	((rc)) || rc=1
fi

if ((asan)); then
	if [[ ! -f build-asan/build.ninja ]]; then
		echo "test: meson setup build-asan -Db_sanitize=address,undefined"
		meson setup build-asan -Db_sanitize=address,undefined
	fi
	echo "test: unit suite under ASan/UBSan (build-asan)"
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	if ! meson compile -C build-asan ||
		! meson test -C build-asan --suite unit --print-errorlogs; then
		((rc)) || rc=1
	fi
fi

# One closing line that counts every meson test of every build.
count() {
	cat build/meson-logs/testlog.json build-sys/meson-logs/testlog.json \
		build-asan/meson-logs/testlog.json 2>/dev/null |
		grep -c "\"result\": \"$1\"" || true
}
passed=$(count OK)
failed=$(($(count FAIL) + $(count TIMEOUT) + $(count ERROR)))
if ((rc)); then
	echo "test: FAILED (exit $rc); logs: build/meson-logs/testlog.txt" >&2
	((failed)) || failed=1
fi
echo "test: $passed passed, $failed failed, in $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s"
exit "$rc"
