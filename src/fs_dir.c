/* fs_dir.c - directory listings, read whole when a directory is opened:
 * the real tree (with the control directory and the named views in the
 * root, and the sidecars of the png outputs the caller has open:
 * fs_sidecar.c note 2), the control directory, and views (resolve.h says
 * what a view lists; here the sidecars of computed pngs are added). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs_int.h"

struct dir_entry {
	char *name;
	ino_t ino;
	unsigned char type;
};

struct fs_dir {
	size_t n, cap;
	struct dir_entry *e;
};

void fs_dir_free(struct fs_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

static int dir_add(struct fs_dir *d, const char *name, ino_t ino,
		   unsigned char type)
{
	if (d->n == d->cap) {
		size_t nc = d->cap ? 2 * d->cap : 64;
		struct dir_entry *ne = realloc(d->e, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->e = ne;
		d->cap = nc;
	}
	if (!(d->e[d->n].name = strdup(name)))
		return -ENOMEM;
	d->e[d->n].ino = ino;
	d->e[d->n].type = type;
	d->n++;
	return 0;
}

static int add_sidecar(void *arg, const char *name, fuse_ino_t ino)
{
	return dir_add(arg, name, ino, DT_REG);
}

struct view_add {
	struct rfs_fs *fs;
	struct fs_dir *d;
	ino_t ino;
};

static int add_view_sidecar(void *arg, const char *name)
{
	struct view_add *va = arg;

	return dir_add(va->d, name, va->ino, DT_REG);
}

/* One entry of a view; in a png view also its sidecars once the png is in
 * the store (fs_sidecar.c note 3). */
static int add_view_entry(void *arg, const struct rfs_name *r)
{
	struct view_add *va = arg;
	const char *name = strrchr(r->path, '/');
	struct rfs_src_id id;
	rfs_key key;
	int rc, fd;

	name = name ? name + 1 : r->path;
	rc = dir_add(va->d, name, r->st.st_ino,
		     r->kind == RFS_NAME_VIEW ? DT_DIR : DT_REG);
	if (rc || r->kind != RFS_NAME_VIRTUAL || r->format != RFS_FMT_PNG)
		return rc;
	rfs_src_id_from_stat(&id, &r->st);
	rfs_key_make(&key, &id, r->canonical);
	if (rfs_store_lookup(va->fs->store, &key, &id, r->canonical,
			     NULL) != 0 ||
	    (fd = rfs_store_open_object(va->fs->store, &key)) < 0)
		return 0;
	va->ino = r->st.st_ino;
	rc = fs_sidecar_each(fd, name, add_view_sidecar, va);
	close(fd);
	return rc;
}

static int view_list(struct rfs_fs *fs, struct rfs_node *n, struct fs_dir *d)
{
	struct rfs_view v = {
		.path = n->path,
		.src = n->src,
		.canonical = n->canonical,
		.format = n->format,
	};
	struct view_add va = { .fs = fs, .d = d };
	int rc;

	if ((rc = dir_add(d, ".", n->ino, DT_DIR)) ||
	    (rc = dir_add(d, "..", FUSE_ROOT_ID, DT_DIR)))
		return rc;
	return rfs_resolve_view_list(&fs->root, &v, add_view_entry, &va);
}

/* The named views in the root listing, but one a real entry hides. */
static int add_named_views(struct rfs_fs *fs, struct fs_dir *d)
{
	struct stat st;
	int rc = 0;

	for (size_t i = 0; i < fs->root.nviews && rc == 0; i++) {
		const char *name = fs->root.views[i].name;
		if (fstatat(fs->root.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		rc = dir_add(d, name, FUSE_ROOT_ID + 1 + i, DT_DIR);
	}
	return rc;
}

/* The whole listing is read at opendir, so offsets are plain indexes and
 * the control directory can be listed in the root like any entry. */
int fs_dir_open(struct rfs_fs *fs, struct rfs_node *n, pid_t pid,
		struct fs_dir **out)
{
	struct fs_dir *d = calloc(1, sizeof(*d));
	int rc = 0;

	if (!d)
		return -ENOMEM;
	if (n->kind == RFS_NODE_CTL_DIR) {
		if ((rc = dir_add(d, ".", n->ino, DT_DIR)) ||
		    (rc = dir_add(d, "..", FUSE_ROOT_ID, DT_DIR)))
			goto out;
		for (int i = 0; i < RFS_CTL_NFILES && !rc; i++)
			rc = dir_add(d, rfs_ctl_names[i], fs->ctl_file[i].ino,
				     DT_REG);
		goto out;
	}
	if (n->kind == RFS_NODE_VIEW) {
		rc = view_list(fs, n, d);
		goto out;
	}
	if (n->kind != RFS_NODE_REAL) {
		rc = -ENOTDIR;
		goto out;
	}
	int fd = openat(fs->root.fd, fs_rel(n->path),
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	DIR *dp = fdopendir(fd);
	if (!dp) {
		rc = -errno;
		close(fd);
		goto out;
	}
	struct dirent *de;
	while ((de = readdir(dp)) && rc == 0)
		rc = dir_add(d, de->d_name, de->d_ino, de->d_type);
	closedir(dp);
	if (rc == 0 && n->path[0] == '\0')
		rc = dir_add(d, RFS_CTL_DIR, fs->ctl_dir.ino, DT_DIR);
	if (rc == 0 && n->path[0] == '\0')
		rc = add_named_views(fs, d);
	if (rc == 0)
		rc = fs_sidecar_list(fs, n->path, pid, add_sidecar, d);
out:
	if (rc < 0) {
		fs_dir_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

size_t fs_dir_fill(struct fs_dir *d, fuse_req_t req, off_t off, char *buf,
		   size_t size)
{
	size_t used = 0;

	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = d->e[i].ino,
				   .st_mode = (mode_t)d->e[i].type << 12 };
		size_t l = fuse_add_direntry(req, buf + used, size - used,
					     d->e[i].name, &st, (off_t)(i + 1));
		if (l > size - used)
			break;
		used += l;
	}
	return used;
}
