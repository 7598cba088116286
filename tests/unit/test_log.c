/* test_log.c - what a mount keeps of its log (log.h): whose lines a user
 * reads in .rasterfs/log, the once-a-minute notices (on a test clock, no
 * waiting), the workers' lines as the daemon reads them, the state file's
 * name and the file sink's rotation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/log.h"

#include "check.h"

static char *ring_for(uid_t uid, int all)
{
	char *text = NULL;
	size_t len = 0;
	int rc = rfs_log_ring_text(uid, all, &text, &len);

	check(rc == 0 && text && strlen(text) == len, "ring text: %d", rc);
	return text;
}

static int has(const char *text, const char *needle)
{
	return text && strstr(text, needle) != NULL;
}

static void test_owners(void)
{
	const uid_t job[] = { 1000, 1001 };
	char *t;

	check(rfs_log_ring_open() == 0, "ring");
	rfs_log(LOG_INFO, "everyone's line");
	rfs_log_set_owner(1000);
	rfs_log(LOG_NOTICE, "a.tif@fokal=3: asked for by 1000");
	rfs_log_set_owner(2000);
	rfs_log(LOG_NOTICE, "secret.tif@focal=3: asked for by 2000");
	rfs_log_set_owner(RFS_LOG_PRIVATE);
	rfs_log(LOG_INFO, "store line");
	rfs_log_set_owner(RFS_LOG_NOBODY);
	rfs_log_owned(job, 2, LOG_ERR, "job 7 failed: shared.tif");
	rfs_log_owned(NULL, 0, LOG_ERR, "job 8 failed: nobody's");
	rfs_log(LOG_DEBUG, "a debug line"); /* above LOG_INFO: dropped */

	t = ring_for(1000, 0);
	check(has(t, "info: everyone's line\n"), "1000 reads everyone's:\n%s",
	      t);
	check(has(t, "notice [uid=1000]: a.tif@fokal=3: asked for by 1000\n"),
	      "1000 reads its own line, tagged:\n%s", t);
	check(has(t, "error [uid=1000,1001]: job 7 failed: shared.tif\n"),
	      "1000 reads its job's line:\n%s", t);
	check(!has(t, "secret.tif") && !has(t, "store line") &&
	      !has(t, "job 8") && !has(t, "debug"),
	      "1000 reads no other user's, private or debug line:\n%s", t);
	free(t);

	t = ring_for(1001, 0);
	check(has(t, "job 7 failed") && !has(t, "a.tif@fokal"),
	      "1001: its job, not 1000's lookup:\n%s", t);
	free(t);

	t = ring_for(0, 1);
	check(has(t, "secret.tif") && has(t, "a.tif@fokal") &&
	      has(t, "[private]: store line") && has(t, "job 8") &&
	      has(t, "everyone's"), "root reads every line:\n%s", t);
	/* oldest first */
	check(t && strstr(t, "everyone's") < strstr(t, "job 8"),
	      "oldest first:\n%s", t);
	free(t);
}

static void test_ring_wraps(void)
{
	char *t;

	for (int i = 0; i < RFS_LOG_RING + 10; i++)
		rfs_log(LOG_INFO, "wrap %d", i);
	t = ring_for(0, 1);
	int lines = 0;
	for (const char *p = t; p && *p; p++)
		lines += *p == '\n';
	check(lines == RFS_LOG_RING, "the ring keeps %d lines: %d",
	      RFS_LOG_RING, lines);
	check(has(t, "wrap 10\n") && !has(t, "wrap 9\n") &&
	      has(t, "wrap 509\n"), "the oldest are dropped");
	free(t);
}

static double test_now;

static double test_clock(void)
{
	return test_now;
}

static void test_once(void)
{
	unsigned held = 99;

	rfs_log_once_clock(test_clock);
	test_now = 1000;
	check(rfs_log_once("0 x.tif@fokal=3", 60, &held) == 1 && held == 0,
	      "first time: logged");
	test_now = 1001;
	check(rfs_log_once("0 x.tif@fokal=3", 60, &held) == 0,
	      "again within the minute: held back");
	check(rfs_log_once("0 x.tif@fokal=3", 60, &held) == 0, "and again");
	check(rfs_log_once("1000 x.tif@fokal=3", 60, &held) == 1,
	      "another user's key: logged");
	check(rfs_log_once("0 y.tif@fokal=3", 60, &held) == 1,
	      "another name: logged");
	test_now = 1059.9;
	check(rfs_log_once("0 x.tif@fokal=3", 60, &held) == 0,
	      "59.9 s later: still held back");
	test_now = 1060;
	check(rfs_log_once("0 x.tif@fokal=3", 60, &held) == 1 && held == 3,
	      "a minute later: logged, with the 3 held back: %u", held);
	rfs_log_once_clock(NULL);
}

static unsigned owners_of(void *arg, uint64_t job, uid_t *uids, unsigned max)
{
	(void)arg;
	if (job != 42 || max < 1)
		return 0;
	uids[0] = 1234;
	return 1;
}

static void test_capture_lines(void)
{
	char *t;

	rfs_log_capture_owners(owners_of, NULL);
	rfs_log_capture_line("<3>777 42 GDAL error 1: truncated");
	rfs_log_capture_line("<4>777 43 a job the pool does not know");
	rfs_log_capture_line("<6>777 0 confined: uid 1");
	rfs_log_capture_line("malloc(): corrupted top size");
	rfs_log_capture_line("<7>777 42 a debug line of job 42");
	rfs_log_capture_owners(NULL, NULL);

	t = ring_for(1234, 0);
	check(has(t, "error [uid=1234]: worker[777] job 42: GDAL error 1: "
		  "truncated\n"), "a job's worker line is its user's:\n%s", t);
	check(has(t, "info: worker[777]: confined: uid 1\n"),
	      "a worker line of no job is everyone's:\n%s", t);
	check(!has(t, "job 43") && !has(t, "malloc"),
	      "an unknown job's line and raw stderr are private:\n%s", t);
	free(t);
	t = ring_for(0, 1);
	check(has(t, "warning [private]: worker[777] job 43: a job the pool "
		  "does not know\n") &&
	      has(t, "warning [private]: worker: malloc(): corrupted top "
		  "size\n"), "root reads them:\n%s", t);
	free(t);
}

static void test_state_file(const char *tmp)
{
	char buf[PATH_MAX], want[PATH_MAX];
	struct stat st;

	setenv("XDG_STATE_HOME", tmp, 1);
	check(rfs_log_state_file("/home/u/mnt/dem", buf, sizeof(buf)) == 0,
	      "state file");
	snprintf(want, sizeof(want), "%s/rasterfs/home-u-mnt-dem.log", tmp);
	check(strcmp(buf, want) == 0, "state file '%s', want '%s'", buf, want);
	snprintf(want, sizeof(want), "%s/rasterfs", tmp);
	check(stat(want, &st) == 0 && S_ISDIR(st.st_mode) &&
	      (st.st_mode & 0777) == 0700, "made %s 0700", want);
	check(rfs_log_state_file("/", buf, sizeof(buf)) == 0 &&
	      strstr(buf, "/rasterfs/root.log"), "/ is root.log: %s", buf);
	setenv("XDG_STATE_HOME", "relative/dir", 1);
	setenv("HOME", tmp, 1);
	check(rfs_log_state_file("/m", buf, sizeof(buf)) == 0 &&
	      strstr(buf, "/.local/state/rasterfs/m.log"),
	      "a relative XDG_STATE_HOME is ignored: %s", buf);
	unsetenv("XDG_STATE_HOME");

	setenv("RASTERFS_TEST_NO_SYSLOG", "1", 1);
	check(!rfs_log_have_syslog(), "RASTERFS_TEST_NO_SYSLOG=1: no syslog");
	unsetenv("RASTERFS_TEST_NO_SYSLOG");
}

static void test_file_rotation(const char *tmp)
{
	char path[PATH_MAX], old[PATH_MAX + 2];
	struct stat st, so;

	snprintf(path, sizeof(path), "%s/rot.log", tmp);
	snprintf(old, sizeof(old), "%s.1", path);
	check(rfs_log_open_file("t", path, 4096, LOG_INFO) == 0, "open file");
	for (int i = 0; i < 200; i++)
		rfs_log(LOG_INFO, "line %03d of a file that must rotate", i);
	check(stat(path, &st) == 0 && st.st_size <= 4096 + 200,
	      "file stays near its cap: %lld", (long long)st.st_size);
	check(stat(old, &so) == 0 && so.st_size > 4096,
	      "the older lines are in .1: %lld", (long long)so.st_size);
	check((st.st_mode & 0777) == 0600 || (st.st_mode & 0077) == 0,
	      "file is private: %o", st.st_mode & 0777);
	FILE *f = fopen(path, "r");
	char line[512] = "";
	while (f && fgets(line, sizeof(line), f))
		;
	if (f)
		fclose(f);
	check(strstr(line, "t[") && strstr(line, "info: line 199 of"),
	      "last line dated and tagged: %s", line);
	check(line[4] == '-' && line[7] == '-' && line[10] == ' ',
	      "file lines carry the date: %s", line);
	rfs_log_open("t", RFS_LOG_STDERR, LOG_INFO);
}

int main(void)
{
	char tmp[] = "/tmp/test_log.XXXXXX";

	umask(077);
	if (!mkdtemp(tmp))
		return 1;
	rfs_log_open("test_log", RFS_LOG_STDERR, LOG_INFO);
	/* the lines go to the ring; keep stderr quiet */
	int null = open("/dev/null", O_WRONLY), saved = dup(STDERR_FILENO);
	dup2(null, STDERR_FILENO);
	test_owners();
	test_ring_wraps();
	test_once();
	test_capture_lines();
	test_state_file(tmp);
	test_file_rotation(tmp);
	dup2(saved, STDERR_FILENO);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		check(0, "cleanup %s", tmp);
	return check_report();
}
