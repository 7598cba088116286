/* test_resolve.c - what a name in the mount is (resolve.h), on a plain
 * directory tree: no FUSE, no store, no job.  Real files win over virtual
 * readings of their names, the longest prefix naming a regular file is the
 * source, probes and world files are told apart, bad names carry their
 * code and a message, and a source that leaves the root is refused. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/resolve.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-resolve-XXXXXX";
static struct rfs_root root;
static struct rfs_name r;

static void make_file(const char *rel)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
	if (!(f = fopen(p, "w"))) {
		perror(p);
		exit(2);
	}
	fputs("not a raster: the resolver never reads it\n", f);
	fclose(f);
}

static void make(const char *what, int rc)
{
	if (rc < 0) {
		perror(what);
		exit(2);
	}
}

static int resolve(const char *dir, const char *name)
{
	return rfs_resolve(&root, dir, 0, name, &r);
}

static void test_real_and_virtual(void)
{
	check(resolve("", "a.tif") == 0 && r.kind == RFS_NAME_REAL &&
	      !strcmp(r.path, "a.tif") && S_ISREG(r.st.st_mode),
	      "a.tif: real");
	check(resolve("", "sub") == 0 && r.kind == RFS_NAME_REAL &&
	      S_ISDIR(r.st.st_mode), "sub: a real directory");
	check(resolve("", "nope.tif") == -ENOENT, "nope.tif: -ENOENT");

	check(resolve("", "a.tif@focal=3") == 0 &&
	      r.kind == RFS_NAME_VIRTUAL && !strcmp(r.src, "a.tif") &&
	      !strcmp(r.path, "a.tif@focal=3") &&
	      !strcmp(r.canonical, "@focal=3,mean,square") &&
	      r.format == RFS_FMT_GTIFF && S_ISREG(r.st.st_mode),
	      "a.tif@focal=3: virtual, canonical %s", r.canonical);
	check(resolve("sub", "c.tif@slope@fmt=cog") == 0 &&
	      r.kind == RFS_NAME_VIRTUAL && !strcmp(r.src, "sub/c.tif") &&
	      !strcmp(r.path, "sub/c.tif@slope@fmt=cog") &&
	      r.format == RFS_FMT_COG, "sub/c.tif@slope@fmt=cog: virtual");

	/* a real file whose name has an '@' wins; and it is a source too */
	check(resolve("", "b@x.tif") == 0 && r.kind == RFS_NAME_REAL,
	      "b@x.tif: the real file wins");
	check(resolve("", "b@x.tif@slope") == 0 &&
	      r.kind == RFS_NAME_VIRTUAL && !strcmp(r.src, "b@x.tif"),
	      "b@x.tif@slope: the longest prefix naming a file is the source "
	      "(%s)", r.src);
	/* a symlink inside the root is a source like its target */
	check(resolve("", "in.tif@slope") == 0 &&
	      r.kind == RFS_NAME_VIRTUAL && !strcmp(r.src, "in.tif"),
	      "in.tif@slope: a symlink within the root");
}

static void test_bad(void)
{
	check(resolve("", "a.tif@focal=x") == 0 && r.kind == RFS_NAME_BAD &&
	      r.code == -RFS_E_BAD_ARG && strstr(r.msg, "focal"),
	      "a.tif@focal=x: bad, %s: %s", rfs_err_name(r.code), r.msg);
	check(resolve("", "a.tif@frobnicate") == 0 &&
	      r.kind == RFS_NAME_BAD && r.code < 0 && r.msg[0],
	      "a.tif@frobnicate: bad, %s: %s", rfs_err_name(r.code), r.msg);
	check(resolve("", "nope.tif@focal=3") == 0 &&
	      r.kind == RFS_NAME_BAD && r.code == -RFS_E_NO_SOURCE &&
	      strstr(r.msg, "nope.tif@focal=3"),
	      "nope.tif@focal=3: no source, %s", r.msg);
	check(resolve("", "sub@slope") == 0 && r.kind == RFS_NAME_BAD &&
	      r.code == -RFS_E_NO_SOURCE,
	      "a directory is no source");
	check(resolve("", "a.tif@proj=EPSG:99999999") == 0 &&
	      r.kind == RFS_NAME_BAD && r.code == -RFS_E_BAD_CRS,
	      "an unknown CRS: %s %s", rfs_err_name(r.code), r.msg);
	check(resolve("", "out.tif@slope") == 0 && r.kind == RFS_NAME_BAD &&
	      r.code == -RFS_E_ESCAPE && strstr(r.msg, "leaves"),
	      "a symlink out of the root: %s %s", rfs_err_name(r.code),
	      r.msg);
	check(resolve("", "out.tif") == 0 && r.kind == RFS_NAME_REAL,
	      "the escaping symlink itself is a real entry (readlink)");
}

static void test_probes_and_worlds(void)
{
	check(resolve("", "a.tif@focal=3.aux.xml") == 0 &&
	      r.kind == RFS_NAME_PROBE, "X.aux.xml: a probe");
	check(resolve("", "a.tif@focal=3.ovr") == 0 &&
	      r.kind == RFS_NAME_PROBE, "X.ovr: a probe");
	check(resolve("", "a.tif@focal=3.wld") == 0 &&
	      r.kind == RFS_NAME_PROBE,
	      "X.wld of a GeoTIFF output: a probe, not a world file");
	check(resolve("", "a.tif.aux.xml") == -ENOENT,
	      "a real file's sibling: plain -ENOENT");

	check(resolve("", "a.tif@fmt=png.pgw") == 0 &&
	      r.kind == RFS_NAME_WORLD && !strcmp(r.src, "a.tif") &&
	      r.format == RFS_FMT_PNG &&
	      !strcmp(r.path, "a.tif@fmt=png.pgw"),
	      "V.pgw of a png output V: a world file");
	check(resolve("", "a.tif@focal=3@fmt=png.WLD") == 0 &&
	      r.kind == RFS_NAME_WORLD, "V.WLD (any case): a world file");
	check(resolve("", "a.tif@focal=3.pgw") == 0 &&
	      r.kind == RFS_NAME_WORLD && r.format == RFS_FMT_PNG &&
	      !strcmp(r.canonical, "@focal=3,mean,square@fmt=png,minmax"),
	      "B.pgw beside B.png: the world file of B.png (%s)",
	      r.canonical);
	check(rfs_resolve_is_probe("x@y.msk") && !rfs_resolve_is_probe("y.msk"),
	      "a probe needs an '@'");
	check(rfs_resolve_world_suffix("x.PNGW") == 5 &&
	      rfs_resolve_world_suffix("x.png") == 0, "world suffixes");
}

static void test_control(void)
{
	check(resolve("", RFS_CTL_DIR) == 0 && r.kind == RFS_NAME_CTL_DIR,
	      ".rasterfs in the root: the control directory");
	check(resolve("sub", RFS_CTL_DIR) == -ENOENT,
	      ".rasterfs elsewhere: nothing");
	check(rfs_resolve(&root, RFS_CTL_DIR, 1, "jobs", &r) == 0 &&
	      r.kind == RFS_NAME_CTL_FILE && r.ctl == RFS_CTL_JOBS,
	      "jobs: a control file");
	check(rfs_resolve(&root, RFS_CTL_DIR, 1, "stats", &r) == 0 &&
	      r.kind == RFS_NAME_CTL_FILE && r.ctl == RFS_CTL_STATS,
	      "stats: a control file");
	check(rfs_resolve(&root, RFS_CTL_DIR, 1, "a.tif", &r) == -ENOENT,
	      "nothing else in the control directory");
}

static void test_long(void)
{
	char name[NAME_MAX + 1], dir[PATH_MAX - 8];

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	memcpy(name, "a.tif@", 6);
	check(resolve("", name) == 0 && r.kind == RFS_NAME_BAD,
	      "a 255-byte bad name is bad, not a crash");
	memset(dir, 'd', sizeof(dir) - 1);
	dir[sizeof(dir) - 1] = '\0';
	check(resolve(dir, "a.tif") == -ENAMETOOLONG,
	      "a path too long: -ENAMETOOLONG");
}

int main(void)
{
	char p[PATH_MAX], abs[PATH_MAX], cmd[PATH_MAX + 16];

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	make_file("a.tif");
	make_file("b@x.tif");
	snprintf(p, sizeof(p), "%s/sub", tmpdir);
	make("mkdir", mkdir(p, 0755));
	make_file("sub/c.tif");
	snprintf(p, sizeof(p), "%s/in.tif", tmpdir);
	snprintf(abs, sizeof(abs), "%s/a.tif", tmpdir);
	make("symlink", symlink(abs, p));
	snprintf(p, sizeof(p), "%s/out.tif", tmpdir);
	make("symlink", symlink("/etc/passwd", p));

	if (!realpath(tmpdir, abs)) {
		perror("realpath");
		return 2;
	}
	root.path = abs;
	root.len = strlen(abs);
	root.fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	make("open", root.fd);

	test_real_and_virtual();
	test_bad();
	test_probes_and_worlds();
	test_control();
	test_long();

	close(root.fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
