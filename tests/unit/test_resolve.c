/* test_resolve.c - what a name in the mount is (resolve.h), on a plain
 * directory tree: no FUSE, no store, no job.  Real files win over virtual
 * readings of their names, the longest prefix naming a regular file is the
 * source, probes and world files are told apart, bad names carry their
 * code and a message, and a source that leaves the root is refused.
 * Views: which files are rasters by name (rasterext.h), what a view lists
 * (against a list written out here by hand), every listed name resolves
 * to the '@' name's source and chain, bad chain directories fail with the
 * bad name's code, and named views. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/rasterext.h"
#include "rasterfs/resolve.h"

#include "check.h"

static char tmpdir[] = "/tmp/rfs-test-resolve-XXXXXX";
static struct rfs_root root;
static struct rfs_name r;
static struct rfs_rasterext exts;

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
	check(resolve("", "a.tif@fmt=png.aux.xml") == 0 &&
	      r.kind == RFS_NAME_AUX && !strcmp(r.src, "a.tif") &&
	      r.format == RFS_FMT_PNG &&
	      !strcmp(r.path, "a.tif@fmt=png.aux.xml") &&
	      !strcmp(r.canonical, "@fmt=png,minmax"),
	      "V.aux.xml of a png output V: its PAM file (%s)", r.canonical);
	check(resolve("", "a.tif@focal=3.png.aux.xml") == 0 &&
	      r.kind == RFS_NAME_AUX &&
	      !strcmp(r.canonical, "@focal=3,mean,square@fmt=png,minmax"),
	      "B.png.aux.xml: the PAM file of B.png");
	check(resolve("", "a.tif@focal=3.PNG.AUX.XML") == 0 &&
	      r.kind == RFS_NAME_PROBE,
	      "not the case GDAL writes .aux.xml in: a probe");
	check(resolve("", "a.tif@focal=3@fmt=png.pgw.aux.xml") == 0 &&
	      r.kind == RFS_NAME_PROBE &&
	      resolve("", "a.tif@focal=3@fmt=cog.aux.xml") == 0 &&
	      r.kind == RFS_NAME_PROBE,
	      "the .aux.xml of a world file or of a COG: a probe");
	check(rfs_resolve_aux_suffix("x.aux.xml") == 8 &&
	      rfs_resolve_aux_suffix(".aux.xml") == 0 &&
	      rfs_resolve_aux_suffix("x.AUX.XML") == 0, "aux suffix");
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

static void test_rasterext(void)
{
	struct rfs_rasterext e;

	check(rfs_rasterext_parse("  ", &e) == -EINVAL, "no extension");
	check(rfs_rasterext_parse("TIF .vrt tif png x/y toolongextension1",
				  &e) == 0 && e.n == 3,
	      "parse: case, dots, duplicates, bad words (%zu)", e.n);
	check(rfs_rasterext_has(&e, "Tif") && !rfs_rasterext_has(&e, "x/y"),
	      "has");
	check(rfs_rasterext_match(&exts, "dem.tif") &&
	      rfs_rasterext_match(&exts, "DEM.TIF") &&
	      rfs_rasterext_match(&exts, "a.b.vrt") &&
	      rfs_rasterext_match(&exts, "x@y.png"), "rasters by extension");
	check(!rfs_rasterext_match(&exts, "notes.txt") &&
	      !rfs_rasterext_match(&exts, "noext") &&
	      !rfs_rasterext_match(&exts, ".tif") &&
	      !rfs_rasterext_match(&exts, "x.") &&
	      !rfs_rasterext_match(&exts, "dem.tif.ovr"),
	      "no extension, or not a raster's");
	/* in the set (GDAL declares xml and pdf), but exceptions */
	check(!rfs_rasterext_match(&exts, "dem.tif.aux.xml") &&
	      !rfs_rasterext_match(&exts, "meta.xml") &&
	      !rfs_rasterext_match(&exts, "doc.pdf") &&
	      !rfs_rasterext_match(&exts, "dem.tfw"),
	      "sidecars and documents are never rasters");
	check(!rfs_rasterext_match(NULL, "dem.tif"), "no set: no raster");
}

/* The names a listing of view v gives, "name/" for directories, joined
 * by spaces; and each one resolves in v to what the listing said. */
static char listed[4096];
static const struct rfs_view *listing_view;

static int list_cb(void *arg, const struct rfs_name *e)
{
	const char *name = strrchr(e->path, '/');
	struct rfs_name again;
	size_t l = strlen(listed);

	(void)arg;
	name = name ? name + 1 : e->path;
	if (l + strlen(name) + 3 < sizeof(listed))
		sprintf(listed + l, "%s%s%s", l ? " " : "", name,
			e->kind == RFS_NAME_VIEW ? "/" : "");
	check(rfs_resolve_in_view(&root, listing_view, name, &again) == 0 &&
	      again.kind == e->kind && !strcmp(again.src, e->src) &&
	      !strcmp(again.path, e->path) &&
	      !strcmp(again.canonical, e->canonical) &&
	      again.st.st_ino == e->st.st_ino,
	      "%s lists %s, which resolves to the same (%s)",
	      listing_view->path, name, again.src);
	return 0;
}

static const char *list(const struct rfs_view *v)
{
	listed[0] = '\0';
	listing_view = v;
	check(rfs_resolve_view_list(&root, v, list_cb, NULL) == 0,
	      "list %s", v->path);
	return listed;
}

static void test_views(void)
{
	struct rfs_name top, sub, at;
	struct rfs_view v, vv;
	char canon[RFS_CHAIN_TEXT_MAX];

	/* a view of the root, a view below it, and its sub-directories */
	check(resolve("", "@slope") == 0 && r.kind == RFS_NAME_VIEW &&
	      !strcmp(r.src, "") && !strcmp(r.canonical, "@slope=degrees") &&
	      S_ISDIR(r.st.st_mode), "@slope: a view of the root (%s)",
	      r.canonical);
	top = r;
	v = (struct rfs_view){ top.path, top.src, top.canonical, top.format };
	check(rfs_resolve_in_view(&root, &v, "v", &r) == 0 &&
	      r.kind == RFS_NAME_VIEW && !strcmp(r.src, "v") &&
	      !strcmp(r.path, "@slope/v"), "@slope/v: a view of v");
	sub = r;
	vv = (struct rfs_view){ sub.path, sub.src, sub.canonical, sub.format };
	check(!strcmp(list(&vv), "UPPER.TIF a.png.tif dem.tif img.jp2.tif "
		      "link.tif mosaic.vrt.tif sub/ x.vrt.tif"),
	      "@slope/v lists its rasters and directories: %s", listed);
	check(resolve("v", "@slope") == 0 && r.kind == RFS_NAME_VIEW &&
	      !strcmp(r.src, "v") && !strcmp(r.path, "v/@slope"),
	      "v/@slope: a view may start below the root");

	/* VIEW/NAME is NAME@CHAIN: the same source and canonical chain */
	check(rfs_resolve_in_view(&root, &vv, "dem.tif", &at) == 0 &&
	      at.kind == RFS_NAME_VIRTUAL && resolve("v", "dem.tif@slope") == 0 &&
	      !strcmp(at.src, r.src) && !strcmp(at.canonical, r.canonical) &&
	      at.st.st_ino == r.st.st_ino && !strcmp(at.path, "@slope/v/dem.tif"),
	      "@slope/v/dem.tif = v/dem.tif@slope (%s %s)", at.src,
	      at.canonical);
	check(rfs_resolve_in_view(&root, &vv, "mosaic.vrt.tif", &at) == 0 &&
	      at.kind == RFS_NAME_VIRTUAL && !strcmp(at.src, "v/mosaic.vrt"),
	      "mosaic.vrt.tif: the source plus .tif");
	check(rfs_resolve_in_view(&root, &vv, "x.vrt.tif", &at) == 0 &&
	      !strcmp(at.src, "v/x.vrt.tif"),
	      "x.vrt.tif: a real x.vrt.tif hides x.vrt's view name");
	check(rfs_resolve_in_view(&root, &vv, "link.tif", &at) == 0 &&
	      at.kind == RFS_NAME_VIRTUAL && !strcmp(at.src, "v/link.tif") &&
	      S_ISREG(at.st.st_mode), "a symlink inside the root: its target");
	check(rfs_resolve_in_view(&root, &vv, "out.tif", &at) == 0 &&
	      at.kind == RFS_NAME_BAD && at.code == -RFS_E_ESCAPE,
	      "a symlink leaving the root: RFS-E103 (%s)", at.msg);
	static const char *const absent[] = {
		"notes.txt", "dem.tif.aux.xml", "mosaic.vrt", "dem.tif.tif",
		"a.png", "dirlink", "fifo.tif", "noext", "UPPER.TIF.tif",
		"dem.TIF", "doc.pdf", "doc.pdf.tif", ".", "..", "nope.tif",
		"dem.tif.pgw",
	};
	for (size_t i = 0; i < sizeof(absent) / sizeof(*absent); i++)
		check(rfs_resolve_in_view(&root, &vv, absent[i], &at) == -ENOENT,
		      "@slope/v/%s: not in the view", absent[i]);

	/* a png view: names end with .png, world files beside them */
	check(resolve("", "@slope.png") == 0 && r.kind == RFS_NAME_VIEW &&
	      r.format == RFS_FMT_PNG, "@slope.png: a png view");
	snprintf(canon, sizeof(canon), "%s", r.canonical);
	top = r;
	v = (struct rfs_view){ top.path, top.src, top.canonical, top.format };
	check(rfs_resolve_in_view(&root, &v, "v", &sub) == 0, "png view/v");
	vv = (struct rfs_view){ sub.path, sub.src, sub.canonical, sub.format };
	check(!strcmp(list(&vv), "UPPER.TIF.png a.png dem.tif.png "
		      "img.jp2.png link.tif.png mosaic.vrt.png sub/ "
		      "x.vrt.png x.vrt.tif.png"),
	      "@slope.png/v: %s", listed);
	check(rfs_resolve_in_view(&root, &vv, "dem.tif.png", &at) == 0 &&
	      at.kind == RFS_NAME_VIRTUAL &&
	      resolve("v", "dem.tif@slope.png") == 0 &&
	      !strcmp(at.src, r.src) && !strcmp(at.canonical, r.canonical) &&
	      !strcmp(at.canonical, canon),
	      "@slope.png/v/dem.tif.png = v/dem.tif@slope.png (%s)",
	      at.canonical);
	check(rfs_resolve_in_view(&root, &vv, "a.png", &at) == 0 &&
	      !strcmp(at.src, "v/a.png"), "a.png keeps its name");
	static const char *const worlds[] = {
		"dem.tif.pgw", "dem.tif.pngw", "dem.tif.wld", "dem.tif.png.wld",
		"a.pgw",
	};
	for (size_t i = 0; i < sizeof(worlds) / sizeof(*worlds); i++)
		check(rfs_resolve_in_view(&root, &vv, worlds[i], &at) == 0 &&
		      at.kind == RFS_NAME_WORLD && at.format == RFS_FMT_PNG &&
		      !strcmp(at.canonical, canon),
		      "@slope.png/v/%s: a world file (%s)", worlds[i], at.src);
	check(rfs_resolve_in_view(&root, &vv, "dem.tif.png.aux.xml",
				  &at) == 0 && at.kind == RFS_NAME_AUX &&
	      at.format == RFS_FMT_PNG && !strcmp(at.canonical, canon) &&
	      !strcmp(at.src, "v/dem.tif"),
	      "@slope.png/v/dem.tif.png.aux.xml: its PAM file (%s)", at.src);
	check(rfs_resolve_in_view(&root, &vv, "dem.tif.aux.xml", &at) ==
	      -ENOENT, "the PAM file of a name that is no png: none");
	check(rfs_resolve_in_view(&root, &vv, "dem.tif", &at) == -ENOENT &&
	      rfs_resolve_in_view(&root, &vv, "notes.pgw", &at) == -ENOENT,
	      "no GeoTIFF names and no world file without a png in a png view");

	/* a COG view keeps .tif names */
	check(resolve("", "@fmt=cog") == 0 && r.kind == RFS_NAME_VIEW &&
	      r.format == RFS_FMT_COG && !strcmp(r.canonical, "@fmt=cog"),
	      "@fmt=cog: a view with no step (%s)", r.canonical);

	/* bad chains fail like the same chain after a file name */
	static const char *const bad[] = {
		"fokal=3", "focal=4", "proj=EPSG:99999999", "fmt=png@slope",
		"slope.png.tif", "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char dname[64], fname[64];
		int code;
		snprintf(dname, sizeof(dname), "@%s", bad[i]);
		snprintf(fname, sizeof(fname), "a.tif@%s", bad[i]);
		check(resolve("", fname) == 0 && r.kind == RFS_NAME_BAD,
		      "%s is bad", fname);
		code = r.code;
		check(resolve("", dname) == 0 && r.kind == RFS_NAME_BAD &&
		      r.code == code && r.msg[0],
		      "%s: %s like %s (%s)", dname, rfs_err_name(r.code),
		      fname, r.msg);
		check(resolve("v", dname) == 0 && r.kind == RFS_NAME_BAD &&
		      r.code == code, "v/%s: the same", dname);
	}

	/* a real entry wins; a real file's '@' names stay virtual files */
	check(resolve("", "@real") == 0 && r.kind == RFS_NAME_REAL,
	      "@real: a real directory wins");
	check(resolve("", "@a.tif@slope") == 0 && r.kind == RFS_NAME_VIRTUAL &&
	      !strcmp(r.src, "@a.tif"), "@a.tif@slope: a virtual file of "
	      "the real @a.tif");
	check(rfs_resolve_view_name("dem.TIFF", RFS_FMT_GTIFF, canon) == 0 &&
	      !strcmp(canon, "dem.TIFF") &&
	      rfs_resolve_view_name("dem.tif", RFS_FMT_COG, canon) == 0 &&
	      !strcmp(canon, "dem.tif") &&
	      rfs_resolve_view_name("dem.tif", RFS_FMT_PNG, canon) == 0 &&
	      !strcmp(canon, "dem.tif.png"), "view names");
}

static void test_named_views(void)
{
	struct rfs_named_view nv[2];
	char msg[RFS_MSG_MAX + 256];

	check(rfs_resolve_named_view(&root, "hs:@proj=EPSG:3857@hillshade",
				     &nv[0], msg, sizeof(msg)) == 0 &&
	      !strcmp(nv[0].name, "hs") &&
	      !strcmp(nv[0].canonical,
		      "@proj=EPSG:3857,near@hillshade=315,45,z=1"),
	      "hs:@proj=EPSG:3857@hillshade: the first ':' ends NAME (%s)",
	      nv[0].canonical);
	check(rfs_resolve_named_view(&root, "p:slope.png", &nv[1], msg,
				     sizeof(msg)) == 0 &&
	      nv[1].format == RFS_FMT_PNG, "p:slope.png: '@' may be left out");
	static const char *const bad[] = {
		"sub:@slope", RFS_CTL_DIR ":@slope", "a/b:@slope", "a@b:@slope",
		"..:@slope", ":@slope", "hs", "hs:@fokal=3", "hs:@focal=4",
		"hs:", "a.tif:@slope",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		msg[0] = '\0';
		check(rfs_resolve_named_view(&root, bad[i], &nv[1], msg,
					     sizeof(msg)) == -RFS_E_OPTION &&
		      strstr(msg, bad[i]) && !strchr(msg, '\n'),
		      "view=%s refused: %s", bad[i], msg);
	}
	check(rfs_resolve_named_view(&root, "hs:@fokal=3", &nv[1], msg,
				     sizeof(msg)) < 0 && strstr(msg, "focal"),
	      "a bad chain's own message: %s", msg);
	root.views = nv;
	root.nviews = 1;
	check(resolve("", "hs") == 0 && r.kind == RFS_NAME_VIEW &&
	      !strcmp(r.src, "") && !strcmp(r.path, "hs") &&
	      !strcmp(r.canonical, nv[0].canonical),
	      "hs in the root: the named view");
	check(resolve("sub", "hs") == -ENOENT, "only in the root");
	root.views = NULL;
	root.nviews = 0;
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
	/* a directory to view: rasters, sidecars, other files, links */
	static const char *const vfiles[] = {
		"v/dem.tif", "v/dem.tif.aux.xml", "v/notes.txt", "v/mosaic.vrt",
		"v/x.vrt", "v/x.vrt.tif", "v/UPPER.TIF", "v/img.jp2",
		"v/a.png", "v/noext", "v/doc.pdf", "v/sub/c.tif", "@a.tif",
	};
	snprintf(p, sizeof(p), "%s/v", tmpdir);
	make("mkdir", mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/v/sub", tmpdir);
	make("mkdir", mkdir(p, 0755));
	snprintf(p, sizeof(p), "%s/@real", tmpdir);
	make("mkdir", mkdir(p, 0755));
	for (size_t i = 0; i < sizeof(vfiles) / sizeof(*vfiles); i++)
		make_file(vfiles[i]);
	snprintf(p, sizeof(p), "%s/v/link.tif", tmpdir);
	make("symlink", symlink("dem.tif", p));
	snprintf(p, sizeof(p), "%s/v/out.tif", tmpdir);
	make("symlink", symlink("/etc/passwd", p));
	snprintf(p, sizeof(p), "%s/v/dirlink", tmpdir);
	make("symlink", symlink("sub", p));
	snprintf(p, sizeof(p), "%s/v/fifo.tif", tmpdir);
	make("mkfifo", mkfifo(p, 0644));
	/* GDAL declares xml and pdf too (PDS4, PDF) */
	make("extensions", rfs_rasterext_parse("tif tiff vrt png jp2 xml pdf",
					       &exts));

	if (!realpath(tmpdir, abs)) {
		perror("realpath");
		return 2;
	}
	root.path = abs;
	root.len = strlen(abs);
	root.fd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	make("open", root.fd);
	root.rasters = &exts;

	test_real_and_virtual();
	test_bad();
	test_probes_and_worlds();
	test_control();
	test_long();
	test_rasterext();
	test_views();
	test_named_views();

	close(root.fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	return check_report();
}
