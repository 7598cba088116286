/* fs_world.c - the world file nodes of png outputs ("X.pgw" beside a
 * fmt=png output): their text comes out of the png object (worldfile.h). */
#include <errno.h>
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

/* A png output's own name never ends with a world file suffix (the
 * grammar refuses "png.pgw"), so the suffix tells the two apart. */
bool fs_world_is(const struct rfs_node *n)
{
	return n->kind == RFS_NODE_VIRTUAL && n->format == RFS_FMT_PNG &&
	       rfs_resolve_world_suffix(n->path) > 0;
}

int fs_world_text(int fd, char *buf)
{
	return rfs_worldfile_read_png(fd, buf, RFS_WORLDFILE_MAX);
}

int fs_world_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size)
{
	char text[RFS_WORLDFILE_MAX];
	int fd = rfs_store_open_object(fs->store, &n->key), rc;

	if (fd < 0)
		return fd;
	rc = fs_world_text(fd, text);
	close(fd);
	if (rc < 0)
		return rc;
	*size = (uint64_t)rc;
	return 0;
}

/* The png outputs named "B.png" that have a node in a directory (see
 * fs_world_list). */
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

/* GDAL looks for a world file only among the names a directory lists
 * when it can list it, and virtual names are not listed, so a listing
 * names the "B.pgw" sibling of each png output "B.png" that has a node in
 * the directory and whose output is in the store. */
int fs_world_list(struct rfs_fs *fs, const char *dir,
		  int (*add)(void *arg, const char *name, fuse_ino_t ino),
		  void *arg)
{
	struct png_seen ps = { .dir = dir, .dirlen = strlen(dir) };
	char name[NAME_MAX + 1];
	int rc = 0;

	rfs_nodes_each(fs->nodes, png_seen_add, &ps);
	for (size_t i = 0; i < ps.n; i++) {
		struct stat sst;
		struct rfs_src_id id;

		/* only nodes of the source as it is now (fs_node.c note 2) */
		if (rc == 0 && ps.e[i].name && ps.e[i].src &&
		    ps.e[i].canonical &&
		    fstatat(fs->root.fd, ps.e[i].src, &sst, 0) == 0 &&
		    (rfs_src_id_from_stat(&id, &sst),
		     !memcmp(&id, &ps.e[i].id, sizeof(id))) &&
		    snprintf(name, sizeof(name), "%s.pgw", ps.e[i].name) <
		    (int)sizeof(name) &&
		    rfs_store_lookup(fs->store, &ps.e[i].key, &id,
				     ps.e[i].canonical, NULL) == 0)
			rc = add(arg, name, ps.e[i].ino);
		free(ps.e[i].name);
		free(ps.e[i].src);
		free(ps.e[i].canonical);
	}
	free(ps.e);
	return rc;
}
