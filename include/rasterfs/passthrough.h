/* passthrough.h - FUSE passthrough: the kernel serves an open file's reads
 * from a backing file the daemon named at open, with no READ request and no
 * copy through the daemon.
 *
 * Whether a mount can use it is known only at FUSE init, and needs all of:
 *  - compiled in: libfuse >= 3.16 (RFS_HAVE_PASSTHROUGH; Debian 12's 3.14
 *    has no passthrough API);
 *  - CAP_SYS_ADMIN in the daemon's effective set: the kernel registers a
 *    backing file for no other daemon (EPERM), so not for a user's mount
 *    through fusermount3;
 *  - the kernel offers FUSE_CAP_PASSTHROUGH (Linux >= 6.9 built with
 *    CONFIG_FUSE_PASSTHROUGH).
 *
 * Rules of the kernel (fs/fuse/iomode.c; checked on Linux 6.18 with
 * libfuse 3.18.1), per FUSE inode, which the caller must keep: a breach
 * fails the reader's open() with EIO, not the daemon's reply (the kernel
 * still sends a RELEASE for that open, so counts stay balanced):
 *  1. A passthrough open carries FOPEN_PASSTHROUGH (libfuse sets it when
 *     fi->backing_id > 0) and may add only FOPEN_DIRECT_IO (reads then
 *     come to the daemon again; mmap still maps the backing file),
 *     FOPEN_NOFLUSH or FOPEN_PARALLEL_DIRECT_WRITES: keep_cache is refused.
 *  2. While a handle of the inode is open with passthrough (or mmapped
 *     after its fd closed), every other open of it must be a passthrough
 *     open through the same registered backing object, i.e. the same
 *     backing id: a second registration of the same file is another
 *     object and is refused, and so are cached opens (keep_cache or not)
 *     and direct_io opens.
 *  3. While a handle is open cached (neither direct_io nor passthrough;
 *     also a MAP_SHARED mmap of a direct_io handle), a passthrough open
 *     is refused.  direct_io handles take no side: they mix with cached
 *     ones and a passthrough open may follow them (not the reverse).
 *  4. The inode leaves passthrough mode when its last passthrough handle
 *     is released (last close and munmap); the next open may be anything.
 *  5. The kernel looks the backing id up when the opener wakes, after the
 *     reply is written: an id closed right after the reply fails that
 *     open (EIO, most of the time).  Close an id in RELEASE, after the
 *     last handle opened with it.
 *  6. Passthrough reads go to the backing file's own EOF, whatever size
 *     the inode's cached attributes say (a provisional size 0 included);
 *     stat still shows the attributes.
 * So contents that change while an old handle reads them with passthrough
 * can only be opened again under another inode number: a lookup that
 * answers a new nodeid for the name gives the new opens a new inode, and
 * both handles read their own bytes.
 */
#ifndef RASTERFS_PASSTHROUGH_H
#define RASTERFS_PASSTHROUGH_H

#include <fuse_lowlevel.h>

/* Whether CAP_SYS_ADMIN is in this process's effective capability set.
 * Returns 1 or 0, or a negative errno if capget(2) fails. */
int rfs_passthrough_capable(void);

/* At FUSE init (from the init op only): decide whether this mount uses
 * passthrough and, if it does, ask the kernel for it.  want is 0 to turn it
 * off (a mount option, or a test).  Returns 1 when asked for: opens may then
 * call rfs_passthrough_open().  Returns 0 otherwise, with *why (a static
 * string) saying why not, for the mount's log line: compiled out, turned
 * off, no CAP_SYS_ADMIN, or the kernel does not offer it.  Never fails. */
int rfs_passthrough_init(struct fuse_conn_info *conn, int want,
			 const char **why);

/* Register fd, an open regular file, as a backing file on req's session;
 * fd may be closed afterwards.  Returns the backing id (> 0) for
 * rfs_passthrough_reply_open(), or a negative errno:
 *  -EOPNOTSUPP  compiled out;
 *  -EPERM       no CAP_SYS_ADMIN, or passthrough was not negotiated at init;
 *  -ELOOP       fd is on a stacked filesystem (overlayfs, another FUSE
 *               passthrough mount) deeper than init allowed;
 *  -EINVAL, -EISDIR  fd is not a regular file;
 *  -EBADF       fd is not open;
 *  -EIO         the kernel gave no reason.
 * Each call registers a new backing object, even for the same fd (rule 2):
 * keep one id per inode while it has passthrough handles.  Backing files
 * must be on a filesystem that stacks nothing (ext4, xfs, ...): init asks
 * for depth 0, so that the mount may itself be an overlayfs lower layer. */
int rfs_passthrough_open(fuse_req_t req, int fd);

/* Drop the registration of backing_id; handles opened with it keep reading
 * their file.  req must be a request not yet answered (the RELEASE of the
 * last handle, rule 5): libfuse takes the session from it.  Returns 0, or a
 * negative errno: -ENOENT for an id not registered, -EINVAL for an invalid
 * one, -EOPNOTSUPP when compiled out. */
int rfs_passthrough_close(fuse_req_t req, int backing_id);

/* Fill fi for an open answered by passthrough through backing_id: the
 * kernel refuses keep_cache and reads the backing file itself, so neither
 * keep_cache nor direct_io is set (direct_io would send reads to us). */
void rfs_passthrough_fill(struct fuse_file_info *fi, int backing_id);

#endif
