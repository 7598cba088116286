/* mountopt.h - how rasterfs is started as a filesystem: mount(8)'s helper
 * convention, the options mount adds, the mount point, option errors on
 * one line.
 *
 * mount(8) (libmount) runs a helper for `mount -t fuse.rasterfs SRC MNT`
 * (and an fstab line of that type) when it finds /sbin/mount.fuse.rasterfs
 * (its search path, /sbin:/sbin/fs.d:/sbin/fs, is compiled in; PATH is not
 * used, and is removed from the helper's environment), as
 *
 *   mount.fuse.rasterfs SRC MNT [-s] [-f] [-n] [-v] [-N NS] [-o OPTS]
 *
 * `meson install` installs that name as a symlink to rasterfs, which knows
 * itself by its name (rfs_mountopt_is_helper).  Without it, mount(8) runs
 * /sbin/mount.fuse (fuse3's mount.fuse3), which runs `rasterfs SRC MNT -o
 * OPTS,dev,suid` through /bin/sh with sh's default PATH: rasterfs is found
 * only in /usr/local/bin, /usr/bin, /bin and their sbin.  Both reach
 * rfs_mountopt_args(), which drops what mount adds and rasterfs must not
 * hand to libfuse.
 */
#ifndef RASTERFS_MOUNTOPT_H
#define RASTERFS_MOUNTOPT_H

#include <stddef.h>

#include <fuse_lowlevel.h>

/* The name rasterfs answers to as a mount helper. */
#define RFS_MOUNT_HELPER "mount.fuse.rasterfs"

enum {
	RFS_MOUNTOPT_FAKE = 1,    /* mount -f: check, do not mount */
	RFS_MOUNTOPT_VERBOSE = 2, /* mount -v */
	RFS_MOUNTOPT_HELPER = 4,  /* called as RFS_MOUNT_HELPER */
};

/* Is argv0's base name RFS_MOUNT_HELPER? */
int rfs_mountopt_is_helper(const char *argv0);

/* Is opt (one option of a -o list) one that mount(8), an fstab line or
 * mount.fuse3 adds for themselves, and that rasterfs drops: rw and ro
 * (rasterfs is always read-only), defaults, auto, noauto, user, nouser,
 * users, owner, group, nofail, _netdev, comment=..., x-... and X-... ? */
int rfs_mountopt_is_mount_only(const char *opt);

/* The arguments for rasterfs's own parsing, made from argc, argv as the
 * program was started: as a mount helper (rfs_mountopt_is_helper), the
 * convention above turned into `rasterfs SRC MNT -o OPTS`; in every case
 * each -o list without its mount-only options (rfs_mountopt_is_mount_only;
 * a list left empty is dropped with its -o).  Returns 0, *out (free it
 * with fuse_opt_free_args) and *flags (RFS_MOUNTOPT_*); or -RFS_E_OPTION
 * with a one-line message in msg (an unknown helper argument, -N), or
 * -ENOMEM. */
int rfs_mountopt_args(int argc, char **argv, struct fuse_args *out,
		      unsigned *flags, char *msg, size_t len);

/* May rasterfs mount at mnt?  Refuses a directory that is already the
 * root of a mount (mounting there would hide it: two rasterfs stacked, the
 * second on the default cache) and a dead FUSE mount.  Returns 0, or
 * -RFS_E_OPTION with a one-line message in msg, or -errno (mnt cannot be
 * looked at; libfuse will say why when it mounts). */
int rfs_mountopt_check_target(const char *mnt, char *msg, size_t len);

/* Collect libfuse's messages (fuse_log) instead of printing them, until
 * rfs_mountopt_capture_end().  libfuse writes some in pieces (its
 * "unknown option(s)" is three calls), which a log shows as three lines.
 * Not thread safe: for start-up. */
void rfs_mountopt_capture_begin(void);

/* Stop collecting (libfuse's messages go to stderr again, until
 * rfs_log_init routes them); the messages collected, on one line, without
 * libfuse's "fuse: " prefixes and with `x' quoted as 'x', into buf.
 * Returns their length (0: none). */
size_t rfs_mountopt_capture_end(char *buf, size_t len);

#endif
