/* fs_dir.c - directory listings. */
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


/* --- directories --------------------------------------------------- */

struct dir_entry {
	char *name;
	ino_t ino;
	unsigned char type;
};

struct dir_snapshot {
	size_t n;
	struct dir_entry *e;
};

static void snapshot_free(struct dir_snapshot *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

int snapshot_add(struct dir_snapshot *d, size_t *cap, const char *name,
			ino_t ino, unsigned char type)
{
	if (d->n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		struct dir_entry *ne = realloc(d->e, nc * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->e = ne;
		*cap = nc;
	}
	if (!(d->e[d->n].name = strdup(name)))
		return -ENOMEM;
	d->e[d->n].ino = ino;
	d->e[d->n].type = type;
	d->n++;
	return 0;
}

/* The whole listing is read at opendir, so offsets are plain indexes and
 * the control directory can be listed in the root like any entry. */
static int open_snapshot(struct rfs_fs *fs, struct rfs_node *n,
			 struct dir_snapshot **out)
{
	struct dir_snapshot *d = calloc(1, sizeof(*d));
	size_t cap = 0;
	int rc = 0;

	if (!d)
		return -ENOMEM;
	if (n->kind == RFS_NODE_CTL_DIR) {
		if ((rc = snapshot_add(d, &cap, ".", n->ino, DT_DIR)) ||
		    (rc = snapshot_add(d, &cap, "..", FUSE_ROOT_ID, DT_DIR)) ||
		    (rc = snapshot_add(d, &cap, "stats", fs->ctl_stats.ino,
				       DT_REG)) ||
		    (rc = snapshot_add(d, &cap, "jobs", fs->ctl_jobs.ino,
				       DT_REG)))
			goto out;
		goto out;
	}
	if (n->kind != RFS_NODE_REAL) {
		rc = -ENOTDIR;
		goto out;
	}
	int fd = openat(fs->rootfd, rel(n->path),
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
		rc = snapshot_add(d, &cap, de->d_name, de->d_ino, de->d_type);
	closedir(dp);
	if (rc == 0 && n->path[0] == '\0')
		rc = snapshot_add(d, &cap, RFS_CTL_DIR, fs->ctl_dir.ino, DT_DIR);
	if (rc == 0)
		rc = snapshot_add_worlds(fs, n, d, &cap);
out:
	if (rc < 0) {
		snapshot_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct dir_snapshot *d;
	int rc = open_snapshot(fs_of(req), node_of(req, ino), &d);

	if (rc < 0) {
		fuse_reply_err(req, rfs_err_errno(rc));
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		snapshot_free(d);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi)
{
	struct dir_snapshot *d = (struct dir_snapshot *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	(void)ino;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = d->e[i].ino,
				   .st_mode = (mode_t)d->e[i].type << 12 };
		size_t l = fuse_add_direntry(req, buf + used, size - used,
					     d->e[i].name, &st, (off_t)(i + 1));
		if (l > size - used)
			break;
		used += l;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	snapshot_free((struct dir_snapshot *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

