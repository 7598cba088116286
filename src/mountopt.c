/* mountopt.c - started by mount(8), or by hand: arguments, the mount point,
 * option errors on one line (mountopt.h).
 *
 * Design notes:
 *  1. What mount(8) adds.  libmount drops defaults, noauto, x-... and
 *     comment= itself, but hands a helper rw or ro, nofail, _netdev,
 *     user, users, owner, group (as given in fstab), and nodev, nosuid,
 *     noexec for the user mounts; mount.fuse3 drops "", user, nofail,
 *     nouser, users, auto, noauto, _netdev, and adds dev, suid.  libfuse
 *     knows rw, ro, dev, nodev, suid, nosuid, exec, noexec (kernel flags)
 *     and nothing else of these.  So rasterfs drops the union of both
 *     lists and rw/ro (it always mounts read-only), and passes the kernel
 *     flags on.  Options it does not know stay, for libfuse to refuse
 *     (RFS-E400, one line: note 3).
 *  2. The helper's own flags: -f (fake: parse, do not mount), -n (no
 *     mtab: rasterfs never writes one), -s (sloppy: accepted; rasterfs
 *     still refuses options it does not know), -v (print the command).
 *     -N NS (mount in another namespace) is refused.  -t TYPE is what
 *     mount.fuse3 is given; accepted.
 *  3. libfuse prints an option error in pieces through fuse_log ("fuse:
 *     unknown option(s): `", "-o ", "foo=1'\n"); collected and joined
 *     here, the caller prints it once with RFS-E400.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <fuse_log.h>

#include "rasterfs/err.h"
#include "rasterfs/mountopt.h"

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

int rfs_mountopt_is_helper(const char *argv0)
{
	return argv0 && strcmp(base_name(argv0), RFS_MOUNT_HELPER) == 0;
}

int rfs_mountopt_is_mount_only(const char *opt)
{
	/* note 1 */
	static const char *const names[] = {
		"", "rw", "ro", "defaults", "auto", "noauto", "user", "nouser",
		"users", "owner", "group", "nofail", "_netdev",
	};
	static const char *const prefixes[] = { "x-", "X-", "comment=" };

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (strcmp(opt, names[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
		if (strncmp(opt, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Add "-o LIST" to a with list's mount-only options left out (a list left
 * empty adds nothing).  Commas escaped with a backslash are fuse_opt's
 * and stay inside their option.  Returns 0 or -ENOMEM. */
static int add_opts(struct fuse_args *a, const char *list)
{
	size_t n = strlen(list);
	char *keep = malloc(n + 1), *opt = malloc(n + 1);
	size_t kl = 0;
	int rc = -ENOMEM;

	if (!keep || !opt)
		goto out;
	for (const char *p = list; ; ) {
		size_t ol = 0;
		while (*p && *p != ',') {
			if (*p == '\\' && p[1])
				opt[ol++] = *p++;
			opt[ol++] = *p++;
		}
		opt[ol] = '\0';
		if (!rfs_mountopt_is_mount_only(opt)) {
			if (kl)
				keep[kl++] = ',';
			memcpy(keep + kl, opt, ol);
			kl += ol;
		}
		if (!*p++)
			break;
	}
	keep[kl] = '\0';
	rc = 0;
	if (kl && (fuse_opt_add_arg(a, "-o") < 0 ||
		   fuse_opt_add_arg(a, keep) < 0))
		rc = -ENOMEM;
out:
	free(keep);
	free(opt);
	return rc;
}

/* Note 2: HELPER SRC MNT [-s] [-f] [-n] [-v] [-N NS] [-t TYPE] [-o OPTS]
 * into a (which holds argv[0] already). */
static int helper_args(int argc, char **argv, struct fuse_args *a,
		       unsigned *flags, char *msg, size_t len)
{
	int rc;

	if (argc < 3 || !argv[1][0] || !argv[2][0]) {
		snprintf(msg, len, "usage: %s SOURCE_DIR MOUNTPOINT [-o "
			 "OPTIONS] (as mount(8) runs it)", RFS_MOUNT_HELPER);
		return -RFS_E_OPTION;
	}
	if (fuse_opt_add_arg(a, argv[1]) < 0 ||
	    fuse_opt_add_arg(a, argv[2]) < 0)
		return -ENOMEM;
	for (int i = 3; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-s") || !strcmp(arg, "-n")) {
			continue;
		} else if (!strcmp(arg, "-f")) {
			*flags |= RFS_MOUNTOPT_FAKE;
		} else if (!strcmp(arg, "-v")) {
			*flags |= RFS_MOUNTOPT_VERBOSE;
		} else if (!strcmp(arg, "-t") && i + 1 < argc) {
			i++;
		} else if (!strcmp(arg, "-o") && i + 1 < argc) {
			if ((rc = add_opts(a, argv[++i])) < 0)
				return rc;
		} else if (!strcmp(arg, "-N")) {
			snprintf(msg, len, "%s: -N (mount in another mount "
				 "namespace) is not supported", RFS_MOUNT_HELPER);
			return -RFS_E_OPTION;
		} else {
			snprintf(msg, len, "%s: unexpected argument '%s' "
				 "(mount(8) runs it as %s SOURCE_DIR MOUNTPOINT "
				 "[-s] [-f] [-n] [-v] [-o OPTIONS])",
				 RFS_MOUNT_HELPER, arg, RFS_MOUNT_HELPER);
			return -RFS_E_OPTION;
		}
	}
	if (*flags & RFS_MOUNTOPT_VERBOSE) {
		printf("%s: rasterfs", RFS_MOUNT_HELPER);
		for (int i = 1; i < a->argc; i++)
			printf(" %s", a->argv[i]);
		printf("\n");
		fflush(stdout); /* before the daemon's fork */
	}
	return 0;
}

int rfs_mountopt_args(int argc, char **argv, struct fuse_args *out,
		      unsigned *flags, char *msg, size_t len)
{
	struct fuse_args a = FUSE_ARGS_INIT(0, NULL);
	int rc = -ENOMEM, rest = 0;

	*flags = 0;
	msg[0] = '\0';
	if (fuse_opt_add_arg(&a, argc > 0 ? argv[0] : "rasterfs") < 0)
		goto out;
	if (argc > 0 && rfs_mountopt_is_helper(argv[0])) {
		*flags |= RFS_MOUNTOPT_HELPER;
		rc = helper_args(argc, argv, &a, flags, msg, len);
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!rest && !strcmp(arg, "--"))
			rest = 1;
		if (!rest && !strcmp(arg, "-o") && i + 1 < argc)
			rc = add_opts(&a, argv[++i]);
		else if (!rest && !strncmp(arg, "-o", 2) && arg[2])
			rc = add_opts(&a, arg + 2);
		else
			rc = fuse_opt_add_arg(&a, arg) < 0 ? -ENOMEM : 0;
		if (rc < 0)
			goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		fuse_opt_free_args(&a);
	else
		*out = a;
	return rc;
}

int rfs_mountopt_check_target(const char *mnt, char *msg, size_t len)
{
	struct statx stx;
	int root;

	msg[0] = '\0';
	if (statx(AT_FDCWD, mnt, AT_NO_AUTOMOUNT, STATX_INO, &stx) < 0) {
		if (errno != ENOTCONN)
			return -errno;
		snprintf(msg, len, "%s is a FUSE mount whose daemon has gone "
			 "(transport endpoint is not connected): unmount it "
			 "first (fusermount3 -u %s)", mnt, mnt);
		return -RFS_E_OPTION;
	}
	if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
		root = !!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
	} else {
		/* Linux < 5.8: a mount's root is on another device than its
		 * parent (a bind mount of the same filesystem goes unseen). */
		char parent[PATH_MAX];
		struct stat st, pst;
		if (snprintf(parent, sizeof(parent), "%s/..", mnt) >=
		    (int)sizeof(parent) || stat(mnt, &st) < 0 ||
		    stat(parent, &pst) < 0)
			return 0;
		root = st.st_dev != pst.st_dev || st.st_ino == pst.st_ino;
	}
	if (!root)
		return 0;
	snprintf(msg, len, "%s is already a mount point: mounting there would "
		 "hide what is mounted; unmount it first (fusermount3 -u %s, "
		 "or umount) or choose another directory", mnt, mnt);
	return -RFS_E_OPTION;
}

/* ---- libfuse's messages on one line (note 3) -------------------------- */

static char cap_buf[1024];
static size_t cap_len;
static int cap_line_start;

static void cap_put(char c)
{
	if (cap_len + 1 < sizeof(cap_buf))
		cap_buf[cap_len++] = c;
}

static void capture(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char piece[512];
	const char *p = piece;
	(void)level;

	vsnprintf(piece, sizeof(piece), fmt, ap);
	for (; *p; p++) {
		if (cap_line_start) {
			if (!strncmp(p, "fuse: ", 6))
				p += 6;
			if (!*p)
				break;
			if (cap_len) {
				cap_put(';');
				cap_put(' ');
			}
			cap_line_start = 0;
		}
		if (*p == '\n')
			cap_line_start = 1;
		else
			cap_put(*p == '`' ? '\'' : *p);
	}
}

void rfs_mountopt_capture_begin(void)
{
	cap_len = 0;
	cap_line_start = 1;
	fuse_set_log_func(capture);
}

size_t rfs_mountopt_capture_end(char *buf, size_t len)
{
	fuse_set_log_func(NULL);
	while (cap_len && cap_buf[cap_len - 1] == ' ')
		cap_len--;
	cap_buf[cap_len] = '\0';
	snprintf(buf, len, "%s", cap_buf);
	size_t n = cap_len;
	cap_len = 0;
	return n;
}
