/* resolve.c - what a name in the mount is: real, virtual, a png's sidecar
 * (world, aux), probe, view, control or bad (see resolve.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/resolve.h"
#include "rasterfs/step.h"

const char *const rfs_ctl_names[RFS_CTL_NFILES] = {
	[RFS_CTL_STATS] = "stats",
	[RFS_CTL_JOBS] = "jobs",
	[RFS_CTL_LOG] = "log",
	[RFS_CTL_STEPS] = "steps",
};

/* Files GDAL looks for beside a dataset.  None of them exists beside a
 * virtual name, and none may start a job. */
static const char *const probe_suffixes[] = {
	".aux.xml", ".ovr", ".msk", ".aux", ".xml", ".tfw", ".tifw", ".wld",
	".prj", ".imd", ".rpb", "_rpc.txt", ".pvl", ".tab", ".vat.dbf",
	".ovr.aux.xml", ".msk.aux.xml", ".gfs", ".lock", ".lck",
};

int rfs_resolve_is_probe(const char *name)
{
	size_t n = strlen(name);

	if (!strchr(name, '@'))
		return 0;
	for (size_t i = 0; i < sizeof(probe_suffixes) / sizeof(*probe_suffixes);
	     i++) {
		size_t l = strlen(probe_suffixes[i]);
		if (n > l && strcasecmp(name + n - l, probe_suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* World file siblings of a fmt=png output (worldfile.h): for "X.png"
 * GDAL's PNG driver looks for "X.pgw", then "X.pngw", then "X.wld" (upper
 * case too); and any png name V has "V.pgw", "V.pngw" and "V.wld". */
size_t rfs_resolve_world_suffix(const char *name)
{
	static const char *const sfx[] = { ".pgw", ".pngw", ".wld" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strcasecmp(name + n - l, sfx[i]) == 0)
			return l;
	}
	return 0;
}

/* GDAL's PAM file of a dataset X is "X.aux.xml" (BuildPamFilename), in
 * this case. */
size_t rfs_resolve_aux_suffix(const char *name)
{
	static const char sfx[] = ".aux.xml";
	const size_t n = strlen(name), l = sizeof(sfx) - 1;

	return n > l && strcmp(name + n - l, sfx) == 0 ? l : 0;
}

static int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = dir[0] ? snprintf(buf, len, "%s/%s", dir, name) :
			 snprintf(buf, len, "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int rfs_resolve_inside(const struct rfs_root *root, const char *path,
		       char abs[PATH_MAX])
{
	char joined[PATH_MAX];

	if (snprintf(joined, sizeof(joined), "%s/%s", root->path, path) >=
	    (int)sizeof(joined))
		return -ENAMETOOLONG;
	if (!realpath(joined, abs))
		return -errno;
	if (strncmp(abs, root->path, root->len) != 0 ||
	    (abs[root->len] != '/' && root->len > 1))
		return -RFS_E_ESCAPE;
	return 0;
}

/* Parse a chain as a name's steps and check the CRSs its steps name: 0,
 * or a code with msg (rfs_chain_parse's, -RFS_E_BAD_CRS). */
static int check_chain(const char *text, struct rfs_chain *chain, char *msg,
		       size_t len)
{
	int rc = rfs_chain_parse(text, chain, msg, len);

	if (rc < 0)
		return rc;
	for (int s = 0; s < chain->nsteps; s++) {
		/* the step table says which steps name a CRS */
		const char *crs = rfs_step_crs(&chain->steps[s]);
		if (crs && (rc = rfs_crs_check(crs, msg, len)) < 0)
			return rc;
	}
	return 0;
}

/* Split a virtual name in directory dir into its source and its chain, and
 * check the chain.  The source is the longest prefix, ending before an '@',
 * that names a regular file.  Returns 0 with out's src, st, canonical and
 * format, or a code with out->msg. */
static int resolve_virtual(const struct rfs_root *root, const char *dir,
			   const char *name, struct rfs_name *out)
{
	char abs[PATH_MAX], prefix[NAME_MAX + 1];
	struct rfs_chain chain;
	size_t n = strlen(name);
	int rc;

	for (size_t i = n; i-- > 0;) {
		if (name[i] != '@' || i == 0 || i > NAME_MAX)
			continue;
		memcpy(prefix, name, i);
		prefix[i] = '\0';
		if (strcmp(prefix, "..") == 0 || strcmp(prefix, ".") == 0)
			continue;
		if ((rc = join_path(out->src, sizeof(out->src), dir,
				    prefix)) < 0)
			return rc;
		if (fstatat(root->fd, out->src, &out->st, 0) < 0 ||
		    !S_ISREG(out->st.st_mode))
			continue;
		rc = check_chain(name + i + 1, &chain, out->msg,
				 sizeof(out->msg));
		if (rc < 0)
			return rc;
		rc = rfs_resolve_inside(root, out->src, abs);
		if (rc == -RFS_E_ESCAPE)
			snprintf(out->msg, sizeof(out->msg),
				 "the source '%.100s' is a symlink that leaves "
				 "the source directory %.100s (it resolves to "
				 "%.100s)",
				 out->src, root->path, abs);
		if (rc < 0)
			return rc;
		memcpy(out->canonical, chain.canonical,
		       sizeof(out->canonical));
		out->format = chain.format;
		return 0;
	}
	snprintf(out->msg, sizeof(out->msg),
		 "no regular file of the source tree is named by a prefix of "
		 "'%.300s' ending before an '@' (expected "
		 "FILE@step[@step...])",
		 name);
	return -RFS_E_NO_SOURCE;
}

/* The world file sibling name (a world suffix) of a png output in dir:
 * the png is name without the suffix, or, when the suffix is not ".wld"
 * (a GeoTIFF's probe "X.tif"->"X.wld" must stay a probe), name with ".png"
 * in place of it.  0 with out's src, st, canonical and format of the png,
 * or -ENOENT. */
static int resolve_world(const struct rfs_root *root, const char *dir,
			 const char *name, struct rfs_name *out)
{
	char base[NAME_MAX + 1];
	const size_t sl = rfs_resolve_world_suffix(name);
	const size_t bl = strlen(name) - sl;

	if (bl + 4 >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (strchr(base, '@') && resolve_virtual(root, dir, base, out) == 0 &&
	    out->format == RFS_FMT_PNG)
		return 0;
	if (strcasecmp(name + bl, ".wld") == 0)
		return -ENOENT;
	memcpy(base + bl, ".png", 5);
	if (strchr(base, '@') && resolve_virtual(root, dir, base, out) == 0 &&
	    out->format == RFS_FMT_PNG)
		return 0;
	return -ENOENT;
}

/* "X.aux.xml" of a png output X in dir: 0 with out's src, st, canonical
 * and format of the png, or -ENOENT (a probe, then). */
static int resolve_aux(const struct rfs_root *root, const char *dir,
		       const char *name, struct rfs_name *out)
{
	char base[NAME_MAX + 1];
	const size_t bl = strlen(name) - rfs_resolve_aux_suffix(name);

	if (bl >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (strchr(base, '@') && resolve_virtual(root, dir, base, out) == 0 &&
	    out->format == RFS_FMT_PNG)
		return 0;
	return -ENOENT;
}

/* ---- views (resolve.h) ------------------------------------------------ */

/* Does name end with an extension of format f's files?  GeoTIFF and COG:
 * ".tif", ".tiff"; PNG: ".png"; any case. */
static bool has_format_ext(const char *name, enum rfs_format f)
{
	static const char *const tif[] = { ".tif", ".tiff", NULL };
	static const char *const png[] = { ".png", NULL };
	const char *const *e = f == RFS_FMT_PNG ? png : tif;
	size_t n = strlen(name);

	for (; *e; e++) {
		size_t l = strlen(*e);
		if (n > l && strcasecmp(name + n - l, *e) == 0)
			return true;
	}
	return false;
}

int rfs_resolve_view_name(const char *name, enum rfs_format f,
			  char out[NAME_MAX + 1])
{
	int n = has_format_ext(name, f) ?
		snprintf(out, NAME_MAX + 1, "%s", name) :
		snprintf(out, NAME_MAX + 1, "%s%s", name,
			 f == RFS_FMT_PNG ? ".png" : ".tif");

	return n < 0 || n > NAME_MAX ? -ENAMETOOLONG : 0;
}

/* The regular file src (below the root; a symlink is followed, and must
 * stay inside the root) as a view's raster: 0 with out's src and st, or
 * -ENOENT (gone, dangling, not a regular file), -RFS_E_ESCAPE (out->msg),
 * -errno. */
static int view_file(const struct rfs_root *root, const char *src,
		     struct rfs_name *out)
{
	char abs[PATH_MAX];
	struct stat lst;
	int rc;

	if (fstatat(root->fd, src, &lst, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* Only a symlink can lead out: the directories above src were
	 * reached as real directories (the open pins the source beneath
	 * the root anyway, fs_open.c note 2). */
	if (S_ISLNK(lst.st_mode) &&
	    (rc = rfs_resolve_inside(root, src, abs)) < 0) {
		if (rc == -RFS_E_ESCAPE)
			snprintf(out->msg, sizeof(out->msg),
				 "the source '%.100s' is a symlink that leaves "
				 "the source directory %.100s (it resolves to "
				 "%.100s)", src, root->path, abs);
		return rc;
	}
	if (fstatat(root->fd, src, &out->st, 0) < 0)
		return -errno;
	if (!S_ISREG(out->st.st_mode))
		return -ENOENT;
	if (strlen(src) >= sizeof(out->src))
		return -ENAMETOOLONG;
	strcpy(out->src, src);
	return 0;
}

/* What name is among v's entries, world files aside: out's kind, src, st
 * (and code, msg for BAD), or -ENOENT, -errno (rfs_resolve_in_view). */
static int view_entry(const struct rfs_root *root, const struct rfs_view *v,
		      const char *name, struct rfs_name *out)
{
	char src[PATH_MAX], base[NAME_MAX + 1], again[NAME_MAX + 1];
	struct stat st;
	size_t n = strlen(name);
	int rc;

	if ((rc = join_path(src, sizeof(src), v->src, name)) < 0)
		return rc;
	if (fstatat(root->fd, src, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			out->kind = RFS_NAME_VIEW;
			out->st = st;
			strcpy(out->src, src);
			return 0;
		}
		/* An entry of that name: the source named so, if it is a
		 * raster whose view name is its own, or nothing (it shadows
		 * "name minus the extension"). */
		if (!has_format_ext(name, v->format) ||
		    !rfs_rasterext_match(root->rasters, name))
			return -ENOENT;
	} else if (errno != ENOENT) {
		return -errno;
	} else {
		/* "S.tif" / "S.png" of a source S without that extension. */
		if (n < 5 || n - 4 >= sizeof(base))
			return -ENOENT;
		memcpy(base, name, n - 4);
		base[n - 4] = '\0';
		if (!rfs_rasterext_match(root->rasters, base) ||
		    rfs_resolve_view_name(base, v->format, again) < 0 ||
		    strcmp(again, name) != 0)
			return -ENOENT;
		if ((rc = join_path(src, sizeof(src), v->src, base)) < 0)
			return rc;
	}
	rc = view_file(root, src, out);
	if (rc == -RFS_E_ESCAPE) {
		out->kind = RFS_NAME_BAD;
		out->code = rc;
		return 0;
	}
	if (rc < 0)
		return rc;
	out->kind = RFS_NAME_VIRTUAL;
	return 0;
}

/* A png view's world file: "B.pgw" of "B.png" or of "B" (see
 * resolve_world; in a png view every output is a png, so ".wld" after
 * "B.png"'s stem is one too).  0 with out as view_entry fills it for the
 * png, or -ENOENT. */
static int view_world(const struct rfs_root *root, const struct rfs_view *v,
		      const char *name, struct rfs_name *out)
{
	char base[NAME_MAX + 1];
	const size_t bl = strlen(name) - rfs_resolve_world_suffix(name);

	if (bl + 4 >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (view_entry(root, v, base, out) == 0 &&
	    out->kind == RFS_NAME_VIRTUAL)
		return 0;
	memcpy(base + bl, ".png", 5);
	if (view_entry(root, v, base, out) == 0 &&
	    out->kind == RFS_NAME_VIRTUAL)
		return 0;
	return -ENOENT;
}

static void view_fill(const struct rfs_view *v, struct rfs_name *out)
{
	snprintf(out->canonical, sizeof(out->canonical), "%s", v->canonical);
	out->format = v->format;
}

int rfs_resolve_in_view(const struct rfs_root *root, const struct rfs_view *v,
			const char *name, struct rfs_name *out)
{
	int rc;

	out->path[0] = out->src[0] = out->canonical[0] = out->msg[0] = '\0';
	out->code = 0;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -ENOENT;
	if ((rc = join_path(out->path, sizeof(out->path), v->path, name)) < 0)
		return rc;
	view_fill(v, out);
	if (v->format == RFS_FMT_PNG && rfs_resolve_world_suffix(name) &&
	    view_world(root, v, name, out) == 0) {
		out->kind = RFS_NAME_WORLD;
		return 0;
	}
	if (v->format == RFS_FMT_PNG && rfs_resolve_aux_suffix(name)) {
		char base[NAME_MAX + 1];
		size_t bl = strlen(name) - rfs_resolve_aux_suffix(name);
		if (bl < sizeof(base))
			memcpy(base, name, bl);
		base[bl < sizeof(base) ? bl : 0] = '\0';
		if (base[0] && view_entry(root, v, base, out) == 0 &&
		    out->kind == RFS_NAME_VIRTUAL) {
			out->kind = RFS_NAME_AUX;
			return 0;
		}
		out->msg[0] = '\0';
		out->code = 0;
	}
	return view_entry(root, v, name, out);
}

struct view_dirent {
	char *name;
	unsigned char type;
};

static int dirent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct view_dirent *)a)->name,
		      ((const struct view_dirent *)b)->name);
}

/* The entries of directory fd (closed), but "." and "..", sorted by
 * name: 0 and *out, *n, or -ENOMEM, -errno. */
static int read_sorted(int fd, struct view_dirent **out, size_t *n)
{
	struct view_dirent *e = NULL;
	size_t cap = 0, k = 0;
	struct dirent *de;
	int rc = 0;
	DIR *dp = fdopendir(fd);

	if (!dp) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((errno = 0, de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (k == cap) {
			size_t nc = cap ? 2 * cap : 64;
			void *ne = realloc(e, nc * sizeof(*e));
			if (!ne) {
				rc = -ENOMEM;
				break;
			}
			e = ne;
			cap = nc;
		}
		if (!(e[k].name = strdup(de->d_name))) {
			rc = -ENOMEM;
			break;
		}
		e[k].type = de->d_type;
		if (e[k].type == DT_UNKNOWN) {
			struct stat st;
			e[k].type = fstatat(dirfd(dp), de->d_name, &st,
					    AT_SYMLINK_NOFOLLOW) < 0 ? DT_UNKNOWN :
				    S_ISDIR(st.st_mode) ? DT_DIR :
				    S_ISREG(st.st_mode) ? DT_REG :
				    S_ISLNK(st.st_mode) ? DT_LNK : DT_UNKNOWN;
		}
		k++;
	}
	if (rc == 0 && errno)
		rc = -errno;
	closedir(dp);
	if (rc < 0) {
		while (k)
			free(e[--k].name);
		free(e);
		return rc;
	}
	qsort(e, k, sizeof(*e), dirent_cmp);
	*out = e;
	*n = k;
	return 0;
}

int rfs_resolve_view_list(const struct rfs_root *root,
			  const struct rfs_view *v,
			  int (*fn)(void *arg, const struct rfs_name *r),
			  void *arg)
{
	struct view_dirent *e = NULL, key;
	struct rfs_name *r = malloc(sizeof(*r));
	char vname[NAME_MAX + 1], src[PATH_MAX];
	size_t n = 0;
	int rc, fd;

	if (!r)
		return -ENOMEM;
	fd = openat(root->fd, v->src[0] ? v->src : ".",
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ELOOP ? -ENOTDIR : -errno;
		goto out;
	}
	if ((rc = read_sorted(fd, &e, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && rc == 0; i++) {
		r->msg[0] = '\0';
		r->code = 0;
		view_fill(v, r);
		if (e[i].type == DT_DIR) {
			/* as view_entry finds it */
			if (join_path(r->src, sizeof(r->src), v->src,
				      e[i].name) < 0 ||
			    join_path(r->path, sizeof(r->path), v->path,
				      e[i].name) < 0 ||
			    fstatat(root->fd, r->src, &r->st,
				    AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(r->st.st_mode))
				continue;
			r->kind = RFS_NAME_VIEW;
			rc = fn(arg, r);
			continue;
		}
		if ((e[i].type != DT_REG && e[i].type != DT_LNK) ||
		    !rfs_rasterext_match(root->rasters, e[i].name) ||
		    rfs_resolve_view_name(e[i].name, v->format, vname) < 0)
			continue;
		/* Shadowed by an entry named like its view name. */
		key.name = vname;
		if (strcmp(vname, e[i].name) != 0 &&
		    bsearch(&key, e, n, sizeof(*e), dirent_cmp))
			continue;
		if (join_path(src, sizeof(src), v->src, e[i].name) < 0 ||
		    join_path(r->path, sizeof(r->path), v->path, vname) < 0 ||
		    view_file(root, src, r) < 0)
			continue;
		r->kind = RFS_NAME_VIRTUAL;
		rc = fn(arg, r);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
	free(r);
	return rc;
}

/* A name in directory dir that starts with '@' and is no virtual file: the
 * view of dir with the chain name spells.  0 with out's src, st,
 * canonical and format, or the chain's code with out->msg, -errno. */
static int resolve_view_dir(const struct rfs_root *root, const char *dir,
			    const char *name, struct rfs_name *out)
{
	struct rfs_chain chain;
	int rc = check_chain(name, &chain, out->msg, sizeof(out->msg));

	if (rc < 0)
		return rc;
	if (fstatat(root->fd, dir[0] ? dir : ".", &out->st,
		    AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	snprintf(out->src, sizeof(out->src), "%s", dir);
	memcpy(out->canonical, chain.canonical, sizeof(out->canonical));
	out->format = chain.format;
	return 0;
}

int rfs_resolve_named_view(const struct rfs_root *root, const char *spec,
			   struct rfs_named_view *out, char *msg, size_t len)
{
	const char *colon = strchr(spec, ':');
	struct rfs_chain chain;
	char cmsg[RFS_MSG_MAX];
	struct stat st;
	size_t nl;

	/* The first ':' ends NAME: a chain may hold more (EPSG:3857). */
	if (!colon) {
		snprintf(msg, len, "view=%.200s: expected NAME:CHAIN, e.g. "
			 "view=hillshade:@hillshade", spec);
		return -RFS_E_OPTION;
	}
	nl = (size_t)(colon - spec);
	if (nl == 0 || nl > NAME_MAX || memchr(spec, '/', nl) ||
	    memchr(spec, '@', nl) || (nl == 1 && spec[0] == '.') ||
	    (nl == 2 && spec[0] == '.' && spec[1] == '.')) {
		snprintf(msg, len, "view=%.200s: NAME must be a plain "
			 "directory name (not empty, '.' or '..', no '/' or "
			 "'@', at most %d bytes)", spec, NAME_MAX);
		return -RFS_E_OPTION;
	}
	memcpy(out->name, spec, nl);
	out->name[nl] = '\0';
	if (strcmp(out->name, RFS_CTL_DIR) == 0 ||
	    fstatat(root->fd, out->name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT) {
		snprintf(msg, len, "view=%.200s: '%s' is %s in the source "
			 "directory %.200s; choose another NAME", spec,
			 out->name, strcmp(out->name, RFS_CTL_DIR) == 0 ?
			 "the control directory" : "already an entry",
			 root->path);
		return -RFS_E_OPTION;
	}
	if (check_chain(colon + 1, &chain, cmsg, sizeof(cmsg)) < 0) {
		snprintf(msg, len, "view=%.200s: %s", spec, cmsg);
		return -RFS_E_OPTION;
	}
	memcpy(out->canonical, chain.canonical, sizeof(out->canonical));
	out->format = chain.format;
	return 0;
}

/* ---- any name ---------------------------------------------------------- */

int rfs_resolve(const struct rfs_root *root, const char *dir, int in_ctl,
		const char *name, struct rfs_name *out)
{
	int rc;

	out->path[0] = out->src[0] = out->canonical[0] = out->msg[0] = '\0';
	out->code = 0;
	if (in_ctl) {
		for (int i = 0; i < RFS_CTL_NFILES; i++)
			if (strcmp(name, rfs_ctl_names[i]) == 0) {
				out->kind = RFS_NAME_CTL_FILE;
				out->ctl = (enum rfs_ctl_file)i;
				return 0;
			}
		return -ENOENT;
	}
	if (dir[0] == '\0' && strcmp(name, RFS_CTL_DIR) == 0) {
		out->kind = RFS_NAME_CTL_DIR;
		return 0;
	}
	if ((rc = join_path(out->path, sizeof(out->path), dir, name)) < 0)
		return rc;

	/* A real file wins, even one whose name has an '@'. */
	if (fstatat(root->fd, out->path, &out->st, AT_SYMLINK_NOFOLLOW) == 0) {
		out->kind = RFS_NAME_REAL;
		return 0;
	}
	if (errno != ENOENT)
		return -errno;
	for (size_t i = 0; dir[0] == '\0' && i < root->nviews; i++) {
		const struct rfs_named_view *nv = &root->views[i];
		if (strcmp(name, nv->name) != 0)
			continue;
		if (fstatat(root->fd, ".", &out->st, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		memcpy(out->canonical, nv->canonical, sizeof(out->canonical));
		out->format = nv->format;
		out->kind = RFS_NAME_VIEW;
		return 0;
	}
	if (!strchr(name, '@'))
		return -ENOENT;
	if (rfs_resolve_world_suffix(name) &&
	    resolve_world(root, dir, name, out) == 0) {
		out->kind = RFS_NAME_WORLD;
		return 0;
	}
	if (rfs_resolve_aux_suffix(name) &&
	    resolve_aux(root, dir, name, out) == 0) {
		out->kind = RFS_NAME_AUX;
		return 0;
	}
	if (rfs_resolve_is_probe(name)) {
		out->msg[0] = '\0';
		out->kind = RFS_NAME_PROBE;
		return 0;
	}
	out->msg[0] = '\0';
	rc = resolve_virtual(root, dir, name, out);
	if (rc == -RFS_E_NO_SOURCE && name[0] == '@') {
		out->msg[0] = '\0';
		if ((rc = resolve_view_dir(root, dir, name, out)) == 0) {
			out->kind = RFS_NAME_VIEW;
			return 0;
		}
		if (!rfs_err_is_rfs(rc))
			return rc;
	}
	if (rc < 0) {
		out->kind = RFS_NAME_BAD;
		out->code = rc;
		return 0;
	}
	out->kind = RFS_NAME_VIRTUAL;
	return 0;
}
