/* fs_sidecar.c - the sidecars of png outputs: the world file ("X.pgw" and
 * its other spellings) and GDAL's PAM file ("X.aux.xml") beside a fmt=png
 * output, served from the texts the png carries (worldfile.h); and who
 * sees them in a directory listing.
 *
 * Design notes:
 *  1. What GDAL does (3.6: gcore/gdalopeninfo.cpp, gdalpamdataset.cpp,
 *     frmts/png; strace of gdalinfo and of QGIS 3.22): it opens the file,
 *     then, in the same thread and with the file still open, reads its
 *     directory once (GDALOpenInfo::GetSiblingFiles) and looks for
 *     X.aux.xml and for world files only among the names that listing
 *     gives (GDALPamDataset::TryLoadXML, GDALReadWorldFile2): a sibling
 *     that exists but is not listed is never looked at.  Only without a
 *     listing (GDAL_DISABLE_READDIR_ON_OPEN=YES, a directory it cannot
 *     read, more than GDAL_READDIR_LIMIT_ON_OPEN entries) does it stat
 *     the names instead.
 *  2. So a sidecar GDAL is to find must be listed, and what a directory
 *     lists, ls -a, cp -r, rsync and tar copy.  The way out: a real
 *     directory lists the sidecars of a png output only to the process
 *     that has that output open (registered when its open is answered,
 *     before the reply reaches it; dropped at release).  GDAL and QGIS
 *     open the file before they list its directory, and a program that
 *     walks the tree never opens a virtual name (none is listed), so it
 *     never sees a sidecar.  "The process" is the thread group of the
 *     thread FUSE names (/proc/TID/status): the opener and the lister
 *     may be two threads of one program.
 *  3. A png view is a set of png outputs where sidecars belong: it lists
 *     them beside each png that is in the store, to everyone (fs_dir.c),
 *     so a copy of a view is georeferenced.
 *  4. A sidecar is found by its name whatever the listing says (GDAL with
 *     GDAL_DISABLE_READDIR_ON_OPEN stats it).  A world file exists with
 *     its png's name (reading it waits for the png, as opening the png
 *     does); X.aux.xml exists once the png is in the store: GDAL opens the
 *     png first, and a probe of an output never computed starts no job
 *     (fs_node.c answers ENOENT, not cached: fs_hint.c note 1).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/resolve.h"
#include "rasterfs/worldfile.h"

struct fs_holder {
	const struct fs_handle *h;
	const struct rfs_node *n;
	pid_t tgid;
};

/* A png output's own name never ends with a sidecar's suffix (the grammar
 * refuses "png.pgw" and "png.aux.xml"), so the suffix tells them apart. */
enum fs_sidecar fs_sidecar_of(const struct rfs_node *n)
{
	if (n->kind != RFS_NODE_VIRTUAL || n->format != RFS_FMT_PNG)
		return FS_SIDECAR_NONE;
	if (rfs_resolve_world_suffix(n->path))
		return FS_SIDECAR_WORLD;
	if (rfs_resolve_aux_suffix(n->path))
		return FS_SIDECAR_AUX;
	return FS_SIDECAR_NONE;
}

static const char *text_key(enum fs_sidecar s)
{
	return s == FS_SIDECAR_AUX ? RFS_PNG_AUX_KEY : RFS_WORLDFILE_KEY;
}

int fs_sidecar_open(const struct rfs_node *n, int fd, struct fs_handle **out)
{
	const char *key = text_key(fs_sidecar_of(n));
	ssize_t len = rfs_worldfile_read_png(fd, key, NULL, 0);
	struct fs_handle *h;

	*out = NULL;
	if (len == -ENODATA)
		return 0;
	if (len < 0)
		return (int)len;
	if (!(h = fs_handle_text((size_t)len + 1)))
		return -ENOMEM;
	if (rfs_worldfile_read_png(fd, key, h->text, (size_t)len + 1) != len) {
		fs_handle_free(h);
		return -EIO; /* the object is immutable: a read error */
	}
	h->len = (size_t)len;
	*out = h;
	return 0;
}

int fs_sidecar_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size)
{
	int fd = rfs_store_open_object(fs->store, &n->key);
	ssize_t len;

	if (fd < 0)
		return fd;
	len = rfs_worldfile_read_png(fd, text_key(fs_sidecar_of(n)), NULL, 0);
	close(fd);
	if (len < 0)
		return (int)len;
	*size = (uint64_t)len;
	return 0;
}

int fs_sidecar_each(int fd, const char *name,
		    int (*add)(void *arg, const char *name), void *arg)
{
	char side[NAME_MAX + 1];
	size_t l = strlen(name);
	int rc = 0;

	/* the world file GDAL's PNG driver looks for first: "B.pgw" of
	 * "B.png" (a name without ".png" has none GDAL would find) */
	if (l > 4 && strcasecmp(name + l - 4, ".png") == 0 &&
	    snprintf(side, sizeof(side), "%.*s.pgw", (int)(l - 4), name) <
	    (int)sizeof(side) &&
	    rfs_worldfile_read_png(fd, RFS_WORLDFILE_KEY, NULL, 0) >= 0 &&
	    (rc = add(arg, side)) != 0)
		return rc;
	if (snprintf(side, sizeof(side), "%s.aux.xml", name) <
	    (int)sizeof(side) &&
	    rfs_worldfile_read_png(fd, RFS_PNG_AUX_KEY, NULL, 0) >= 0)
		rc = add(arg, side);
	return rc;
}

/* ---- who sees them (note 2) ------------------------------------------- */

/* The thread group of thread tid, or tid itself if /proc cannot say. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)tid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return tid;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return tid;
	buf[n] = '\0';
	if (!(p = strstr(buf, "\nTgid:")))
		return tid;
	return (pid_t)strtol(p + 6, NULL, 10);
}

int fs_sidecar_init(struct rfs_fs *fs)
{
	fs->holders.n = fs->holders.cap = 0;
	fs->holders.e = NULL;
	return -pthread_mutex_init(&fs->holders.lock, NULL);
}

void fs_sidecar_fini(struct rfs_fs *fs)
{
	free(fs->holders.e);
	pthread_mutex_destroy(&fs->holders.lock);
}

void fs_sidecar_hold(struct rfs_fs *fs, const struct fs_handle *h, pid_t pid)
{
	struct fs_holders *hs = &fs->holders;
	pid_t tgid;

	/* a png output (not a sidecar), opened by a thread FUSE can name
	 * (pid 0: a thread outside the mount's pid namespace) */
	if (!h->node || h->node->kind != RFS_NODE_VIRTUAL ||
	    h->node->format != RFS_FMT_PNG ||
	    fs_sidecar_of(h->node) != FS_SIDECAR_NONE || pid <= 0 ||
	    (tgid = tgid_of(pid)) <= 0)
		return;
	pthread_mutex_lock(&hs->lock);
	if (hs->n == hs->cap) {
		size_t nc = hs->cap ? 2 * hs->cap : 16;
		struct fs_holder *ne = realloc(hs->e, nc * sizeof(*ne));
		if (!ne)
			goto out; /* its sidecars stay unlisted: no worse */
		hs->e = ne;
		hs->cap = nc;
	}
	hs->e[hs->n++] = (struct fs_holder){ .h = h, .n = h->node,
					     .tgid = tgid };
out:
	pthread_mutex_unlock(&hs->lock);
}

void fs_sidecar_drop(struct rfs_fs *fs, const struct fs_handle *h)
{
	struct fs_holders *hs = &fs->holders;

	if (!h->node)
		return;
	pthread_mutex_lock(&hs->lock);
	for (size_t i = 0; i < hs->n; i++)
		if (hs->e[i].h == h) {
			hs->e[i] = hs->e[--hs->n];
			break;
		}
	pthread_mutex_unlock(&hs->lock);
}

/* Is n's path directly in directory dir (below the root)?  Its name in
 * *base. */
static int in_dir(const struct rfs_node *n, const char *dir,
		  const char **base)
{
	const char *slash = strrchr(n->path, '/');
	size_t dl = strlen(dir);

	*base = slash ? slash + 1 : n->path;
	if (!slash)
		return dl == 0;
	return (size_t)(slash - n->path) == dl &&
	       strncmp(n->path, dir, dl) == 0;
}

struct list_add {
	int (*add)(void *arg, const char *name, fuse_ino_t ino);
	void *arg;
	fuse_ino_t ino;
};

static int list_one(void *arg, const char *name)
{
	struct list_add *la = arg;

	return la->add(la->arg, name, la->ino);
}

int fs_sidecar_list(struct rfs_fs *fs, const char *dir, pid_t pid,
		    int (*add)(void *arg, const char *name, fuse_ino_t ino),
		    void *arg)
{
	struct fs_holders *hs = &fs->holders;
	pid_t tgid = 0;
	const char *base;
	int rc = 0;

	if (pid <= 0)
		return 0;
	pthread_mutex_lock(&hs->lock);
	for (size_t i = 0; i < hs->n && rc == 0; i++) {
		const struct fs_holder *e = &hs->e[i];
		size_t j;

		if (!in_dir(e->n, dir, &base))
			continue;
		if (tgid == 0 && (tgid = tgid_of(pid)) <= 0)
			break;
		if (e->tgid != tgid || e->h->fd < 0)
			continue;
		/* once per output, however often it is open */
		for (j = 0; j < i; j++)
			if (hs->e[j].tgid == tgid &&
			    strcmp(hs->e[j].n->path, e->n->path) == 0)
				break;
		if (j < i)
			continue;
		struct list_add la = { add, arg, e->n->ino };
		rc = fs_sidecar_each(e->h->fd, base, list_one, &la);
	}
	pthread_mutex_unlock(&hs->lock);
	return rc;
}
