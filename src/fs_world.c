/* fs_world.c - the world files of png outputs. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/step.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"
#include "rasterfs/worldfile.h"


/* A world file node: a virtual node of a png chain whose name ends with a
 * world file suffix (a png output's own name never does: the grammar
 * refuses "png.pgw").  It shares the png's key, so it never has a job of
 * its own. */
bool is_world(const struct rfs_node *n)
{
	return n->kind == RFS_NODE_VIRTUAL &&
	       n->format == RFS_FMT_PNG && world_suffix(n->path) > 0;
}

/* The size of a world node: the length of its png's world file text.
 * -ENOENT: the png is not in the store; -ENODATA: it has no world file
 * text. */
int world_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size)
{
	char text[RFS_WORLDFILE_MAX];
	int fd = rfs_store_open_object(fs->store, &n->key), rc;

	if (fd < 0)
		return fd;
	rc = rfs_worldfile_read_png(fd, text, sizeof(text));
	close(fd);
	if (rc < 0)
		return rc;
	*size = (uint64_t)rc;
	return 0;
}

/* The png outputs named "B.png" that have a node in a directory: GDAL
 * looks for a world file only among the names a directory lists when it
 * can list it, and virtual names are not listed, so a listing names the
 * "B.pgw" sibling of each of them whose output is in the store. */
struct png_seen {
	const char *dir;
	size_t dirlen;
	size_t n, cap;
	struct {
		char *name, *src, *canonical;
		struct rfs_src_id id;
		rfs_key key;
		fuse_ino_t ino;
	} *e;
};

static void png_seen_add(const struct rfs_node *n, void *arg)
{
	struct png_seen *ps = arg;
	const char *base = strrchr(n->path, '/');
	size_t bl;

	if (n->kind != RFS_NODE_VIRTUAL || n->format != RFS_FMT_PNG)
		return;
	base = base ? base + 1 : n->path;
	if ((size_t)(base - n->path) != (ps->dirlen ? ps->dirlen + 1 : 0) ||
	    strncmp(n->path, ps->dir, ps->dirlen) != 0)
		return;
	bl = strlen(base);
	if (bl < 5 || strcasecmp(base + bl - 4, ".png") != 0)
		return;
	if (ps->n == ps->cap) {
		size_t nc = ps->cap ? 2 * ps->cap : 16;
		void *ne = realloc(ps->e, nc * sizeof(*ps->e));
		if (!ne)
			return;
		ps->e = ne;
		ps->cap = nc;
	}
	ps->e[ps->n].name = strndup(base, bl - 4);
	ps->e[ps->n].src = strdup(n->src);
	ps->e[ps->n].canonical = strdup(n->canonical);
	ps->e[ps->n].id = n->id;
	ps->e[ps->n].key = n->key;
	ps->e[ps->n].ino = n->ino;
	ps->n++;
}

int snapshot_add_worlds(struct rfs_fs *fs, struct rfs_node *dir,
			       struct dir_snapshot *d, size_t *cap)
{
	struct png_seen ps = { .dir = dir->path, .dirlen = strlen(dir->path) };
	char name[NAME_MAX + 1];
	int rc = 0;

	rfs_nodes_each(fs->nodes, png_seen_add, &ps);
	for (size_t i = 0; i < ps.n; i++) {
		struct stat sst;
		struct rfs_src_id id;

		/* only nodes of the source as it is now (note 4) */
		if (rc == 0 && ps.e[i].name && ps.e[i].src &&
		    ps.e[i].canonical &&
		    fstatat(fs->rootfd, ps.e[i].src, &sst, 0) == 0 &&
		    (rfs_src_id_from_stat(&id, &sst),
		     !memcmp(&id, &ps.e[i].id, sizeof(id))) &&
		    snprintf(name, sizeof(name), "%s.pgw", ps.e[i].name) <
		    (int)sizeof(name) &&
		    rfs_store_lookup(fs->store, &ps.e[i].key, &id,
				     ps.e[i].canonical, NULL) == 0)
			rc = snapshot_add(d, cap, name, ps.e[i].ino, DT_REG);
		free(ps.e[i].name);
		free(ps.e[i].src);
		free(ps.e[i].canonical);
	}
	free(ps.e);
	return rc;
}
