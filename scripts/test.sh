#!/usr/bin/env bash
# test.sh - build (installing what is missing) and run every test suite:
# unit, mount and slow on build/, then the unit suite again under
# AddressSanitizer + UBSan in build-asan/.  The exit code is nonzero if any
# suite failed.
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
		sed -n '2,9p' "$0"
		exit 0
		;;
	*)
		echo "test: unknown option '$arg' (try --help)" >&2
		exit 2
		;;
	esac
done
[[ ${RFS_NO_ASAN:-0} == 1 ]] && asan=0

bash scripts/setup.sh

rm -f build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
rc=0
echo "test: meson test -C build (suites: unit, mount, slow)"
meson test -C build --print-errorlogs || rc=$?

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

# One closing line that counts every meson test of both builds.
count() {
	cat build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
		2>/dev/null | grep -c "\"result\": \"$1\"" || true
}
passed=$(count OK)
failed=$(($(count FAIL) + $(count TIMEOUT) + $(count ERROR)))
if ((rc)); then
	echo "test: FAILED (exit $rc); logs: build/meson-logs/testlog.txt" >&2
	((failed)) || failed=1
fi
echo "test: $passed passed, $failed failed"
exit "$rc"
