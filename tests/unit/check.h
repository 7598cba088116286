/* The unit tests' shared checks: count, report failures, find tests/data. */
#ifndef RFS_TEST_CHECK_H
#define RFS_TEST_CHECK_H

/*
 * Header-only on purpose: every unit test is one C file, so the counters
 * and helpers below are static to it.  Use:
 *
 *	check(cond, "what %s", detail);	 counts a pass or prints FAIL: ...
 *	CHECK(cond, "what %s", detail);	 the same, with file:line
 *	return check_report();		 prints "N passed, M failed", 0 or 1
 *
 * check_find_data() finds tests/data (RASTERFS_TEST_DATA, else beside
 * this file) by its reference raster opengeos_dtm.tif.
 */

#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), unused));

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (cond) {                                               \
			passed++;                                         \
		} else {                                                  \
			failed++;                                         \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
			printf(__VA_ARGS__);                              \
			printf("\n");                                     \
			fflush(stdout);                                   \
		}                                                         \
	} while (0)

/* Print the tally; the exit status for main(): 0 when nothing failed. */
static inline int check_report(void)
{
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* Write the directory holding tests/data's opengeos_dtm.tif into dir
 * (size bytes): $RASTERFS_TEST_DATA, else ../data beside this file.
 * Returns 0, or -1 when neither holds it. */
static inline int check_find_data(char *dir, size_t size)
{
	char file[512], here[600];
	const char *env = getenv("RASTERFS_TEST_DATA");
	const char *cands[2];

	snprintf(file, sizeof(file), "%s", __FILE__);
	snprintf(here, sizeof(here), "%s/../data", dirname(file));
	cands[0] = env;
	cands[1] = here;
	for (int i = 0; i < 2; i++) {
		char p[1100];
		if (!cands[i] || strlen(cands[i]) > 900)
			continue;
		snprintf(p, sizeof(p), "%s/opengeos_dtm.tif", cands[i]);
		if (access(p, R_OK) == 0) {
			snprintf(dir, size, "%s", cands[i]);
			return 0;
		}
	}
	return -1;
}

#endif
