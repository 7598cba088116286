/* fs_dir.c - directory listings, read whole when a directory is opened. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

static int add_world(void *arg, const char *name, fuse_ino_t ino)
{
	return dir_add(arg, name, ino, DT_REG);
}

/* The whole listing is read at opendir, so offsets are plain indexes and
 * the control directory can be listed in the root like any entry. */
int fs_dir_open(struct rfs_fs *fs, struct rfs_node *n, struct fs_dir **out)
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
	if (rc == 0)
		rc = fs_world_list(fs, n->path, add_world, d);
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
