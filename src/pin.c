/* pin.c - opening a job's source once, beneath its root (pin.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/pin.h"

static int open_beneath(int root_fd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, root_fd, path[0] ? path : ".", &how,
			    sizeof(how));
}

int rfs_pin_source(const struct rfs_root *root, const char *path,
		   struct stat *st)
{
	char abs[PATH_MAX];
	int fd = open_beneath(root->fd, path);
	int rc;

	if (fd < 0 && errno == EXDEV) {
		/* RESOLVE_BENEATH refuses every absolute symlink, even one
		 * that points inside the root: resolve it and open the
		 * result beneath the root again, so a swap in between can
		 * only fail, never leave the root. */
		if ((rc = rfs_resolve_inside(root, path, abs)) < 0)
			return rc;
		const char *r = abs + root->len;
		while (*r == '/')
			r++;
		fd = open_beneath(root->fd, r);
	}
	if (fd < 0)
		return errno == EXDEV ? -RFS_E_ESCAPE : -errno;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = -ENOENT;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}
