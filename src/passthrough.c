/* passthrough.c - can this daemon use FUSE passthrough, and the backing id
 * calls of libfuse behind one face that compiles with libfuse 3.14 too. */
#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rasterfs/passthrough.h"

int rfs_passthrough_capable(void)
{
	/* capget(2) by hand: one bit of one word does not justify libcap as
	 * a new dependency. */
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	return (data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &
		CAP_TO_MASK(CAP_SYS_ADMIN)) != 0;
}

int rfs_passthrough_init(struct fuse_conn_info *conn, int want,
			 const char **why)
{
#if RFS_HAVE_PASSTHROUGH
	if (!want) {
		*why = "turned off (passthrough=0)";
		return 0;
	}
	if (rfs_passthrough_capable() != 1) {
		*why = "the daemon lacks CAP_SYS_ADMIN (a user's mount)";
		return 0;
	}
	if (!(conn->capable & FUSE_CAP_PASSTHROUGH)) {
		*why = "the kernel does not offer it (Linux < 6.9 or "
		       "CONFIG_FUSE_PASSTHROUGH off)";
		return 0;
	}
	/* Backing files on a plain filesystem only (the default, depth 0):
	 * a stacked one (overlayfs) is refused at rfs_passthrough_open with
	 * ELOOP and served the usual way, and the mount itself may still be
	 * a lower layer of an overlay. */
	conn->max_backing_stack_depth = FUSE_BACKING_STACKED_UNDER;
#if FUSE_USE_VERSION >= 317
	/* 3.17 split want into want_ext; its setter keeps both in step
	 * (conn->want |= ... still works and is converted after init). */
	fuse_set_feature_flag(conn, FUSE_CAP_PASSTHROUGH);
#else
	conn->want |= FUSE_CAP_PASSTHROUGH;
#endif
	*why = NULL;
	return 1;
#else
	(void)conn, (void)want;
	*why = "compiled out (libfuse older than 3.16)";
	return 0;
#endif
}

int rfs_passthrough_open(fuse_req_t req, int fd)
{
#if RFS_HAVE_PASSTHROUGH
	/* libfuse answers 0 on failure and leaves the ioctl's errno (its log
	 * call in between, ours or stderr, keeps errno). */
	errno = 0;
	int id = fuse_passthrough_open(req, fd);
	if (id > 0)
		return id;
	return errno ? -errno : -EIO;
#else
	(void)req, (void)fd;
	return -EOPNOTSUPP;
#endif
}

int rfs_passthrough_close(fuse_req_t req, int backing_id)
{
#if RFS_HAVE_PASSTHROUGH
	errno = 0;
	if (fuse_passthrough_close(req, backing_id) < 0)
		return errno ? -errno : -EIO;
	return 0;
#else
	(void)req, (void)backing_id;
	return -EOPNOTSUPP;
#endif
}

void rfs_passthrough_fill(struct fuse_file_info *fi, int backing_id)
{
#if RFS_HAVE_PASSTHROUGH
	fi->backing_id = backing_id;
#else
	(void)backing_id;
#endif
	fi->keep_cache = 0;
	fi->direct_io = 0;
}
