/* confine.c - a worker gives up privileges, the filesystem and the network
 * (see confine.h for what it keeps).
 *
 * Order matters: the O_PATH descriptors of the allowed paths are opened
 * first (after the drop the worker may not traverse to some of them),
 * then the drop (setuid clears the capabilities Landlock would otherwise
 * not need), no_new_privs (both Landlock and seccomp need it from an
 * unprivileged process), the Landlock domain, the seccomp filter.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rasterfs/confine.h"

/* Debian 12's <linux/landlock.h> is Linux 6.1's (ABI 2): the rights and
 * the ruleset fields of later ABIs are defined here, with the values of
 * the kernel's UAPI (they never change once released). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)          /* ABI 2 */
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)       /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)      /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)       /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)    /* ABI 4 */
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)              /* ABI 6 */
#endif

/* struct landlock_ruleset_attr as of ABI 6; the kernel takes the size, so
 * an older kernel is given only the fields it knows. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;  /* ABI 4 */
	uint64_t scoped;              /* ABI 6 */
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_EXEC (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
/* Scratch: files and directories, no devices, FIFOs, sockets, links. */
#define FS_SCRATCH (FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		    LANDLOCK_ACCESS_FS_REMOVE_DIR | \
		    LANDLOCK_ACCESS_FS_REMOVE_FILE | \
		    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | \
		    LANDLOCK_ACCESS_FS_TRUNCATE)
/* The rights that apply to a file (not a directory) in a rule. */
#define FS_FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | \
			LANDLOCK_ACCESS_FS_WRITE_FILE | \
			LANDLOCK_ACCESS_FS_READ_FILE | \
			LANDLOCK_ACCESS_FS_TRUNCATE | \
			LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Every filesystem right of ABI abi (each ABI adds rights at the top). */
static uint64_t fs_rights(int abi)
{
	uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */

	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return all;
}

int rfs_confine_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi > 0 ? (int)abi : 0;
}

/* Paths every job may need, beyond the source root, the caller's
 * read-only directories and the scratch.  The /proc and /sys files are
 * those a worker was seen to read during jobs (strace): its own memory
 * use (worker.c), the number of online CPUs (sysconf, for the warper's
 * threads) and the memory GDAL may size its cache from.  /proc/self as a
 * whole is not given: /proc/self/mem would let a raw band read the
 * worker's own memory, which holds earlier jobs' pixels. */
static const struct {
	const char *path;
	uint64_t access;
} fixed_rules[] = {
	{ "/usr", FS_EXEC },
	{ "/lib", FS_EXEC },     /* the same as /usr/lib on merged-/usr */
	{ "/lib64", FS_EXEC },
	{ "/lib32", FS_EXEC },
	{ "/dev/null", LANDLOCK_ACCESS_FS_READ_FILE |
		       LANDLOCK_ACCESS_FS_WRITE_FILE },
	{ "/dev/urandom", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/proc/self/statm", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/proc/self/status", LANDLOCK_ACCESS_FS_READ_FILE },
	/* the list of its open files (vsi.h), not the files themselves */
	{ "/proc/self/fd", LANDLOCK_ACCESS_FS_READ_DIR },
	{ "/proc/meminfo", LANDLOCK_ACCESS_FS_READ_FILE },
	{ "/sys/devices/system/cpu", FS_READ },
	{ "/sys/fs/cgroup", FS_READ },
};

#define MAX_RULES 64

struct rule {
	int fd;            /* O_PATH */
	uint64_t access;
};

/* Open path for a rule; a missing path is skipped (returns 0). */
static int add_path(struct rule *r, int *n, const char *path,
		    uint64_t access, char *msg, size_t len)
{
	struct stat st;
	int fd;

	if (*n >= MAX_RULES) {
		snprintf(msg, len, "too many Landlock rules");
		return -E2BIG;
	}
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		snprintf(msg, len, "cannot open %s for its Landlock rule: %s",
			 path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= FS_FILE_RIGHTS;
	r[*n].fd = fd;
	r[*n].access = access;
	(*n)++;
	return 0;
}

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;

	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int drop(const struct rfs_confine *c, char *msg, size_t len)
{
	if (setgroups(1, &c->gid) < 0 || setgid(c->gid) < 0 ||
	    setuid(c->uid) < 0) {
		int e = errno;
		snprintf(msg, len, "cannot drop to uid %ld gid %ld: %s",
			 (long)c->uid, (long)c->gid, strerror(e));
		return -e;
	}
	/* A process that can get its privileges back has not dropped them. */
	if (getuid() != c->uid || geteuid() != c->uid ||
	    getgid() != c->gid || getegid() != c->gid ||
	    (c->uid != 0 && setuid(0) == 0)) {
		snprintf(msg, len, "uid %ld gid %ld: the drop did not hold",
			 (long)c->uid, (long)c->gid);
		return -EPERM;
	}
	return 0;
}

static int landlock(int abi, struct rule *r, int n, char *msg, size_t len)
{
	struct ruleset_attr attr = { .handled_access_fs = fs_rights(abi) };
	size_t size = offsetof(struct ruleset_attr, handled_access_net);
	int rs, rc = 0;

	if (abi >= 4) {
		/* handled, and no rule allows any port */
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
					  LANDLOCK_ACCESS_NET_CONNECT_TCP;
		size = offsetof(struct ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET |
			      LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0) {
		rc = -errno;
		snprintf(msg, len, "landlock_create_ruleset: %s",
			 strerror(errno));
		return rc;
	}
	for (int i = 0; i < n; i++) {
		struct landlock_path_beneath_attr pb = {
			.allowed_access = r[i].access & attr.handled_access_fs,
			.parent_fd = r[i].fd,
		};
		if (syscall(SYS_landlock_add_rule, rs,
			    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
			rc = -errno;
			snprintf(msg, len, "landlock_add_rule: %s",
				 strerror(errno));
			goto out;
		}
	}
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		rc = -errno;
		snprintf(msg, len, "landlock_restrict_self: %s",
			 strerror(errno));
	}
out:
	close(rs);
	return rc;
}

/* socket() and io_uring_setup() fail with EACCES; every other system call
 * is left to Landlock and the user's permissions.  Hand-written BPF rather
 * than libseccomp: it is nine instructions and a dependency would be
 * bigger than the filter.  A system call of another ABI than the binary's
 * (int 0x80 i386 calls such as socketcall, x32 calls) is refused whole:
 * a worker never makes one. */
static int seccomp(char *msg, size_t len)
{
#if defined(__x86_64__)
#define RFS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define RFS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#ifdef RFS_AUDIT_ARCH
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, RFS_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		/* x32 numbers have bit 30 set */
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 2, 0),
#else
		BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(f) / sizeof(f[0])),
		.filter = f,
	};

	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
		    SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		int e = errno;
		snprintf(msg, len, "seccomp: %s", strerror(e));
		return -e;
	}
	return 0;
#else
	snprintf(msg, len, "no seccomp filter for this architecture");
	return -ENOSYS;
#endif
}

int rfs_confine_apply(const struct rfs_confine *c,
		      struct rfs_confine_report *rep, char *msg, size_t len)
{
	struct rule r[MAX_RULES];
	struct rfs_confine_report local = { 0 };
	int n = 0, rc = 0, abi;

	msg[0] = '\0';
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (threads() != 1) {
		snprintf(msg, len, "a worker must be single-threaded when it "
			 "is confined (Landlock confines one thread)");
		return -EBUSY;
	}
	abi = rfs_confine_landlock_abi();
	if (abi > 0) {
		if ((rc = add_path(r, &n, c->root, FS_READ, msg, len)) < 0 ||
		    (rc = add_path(r, &n, ".", FS_SCRATCH, msg, len)) < 0)
			goto out;
		for (const char *const *d = c->ro_dirs; d && *d; d++)
			if ((rc = add_path(r, &n, *d, FS_READ, msg, len)) < 0)
				goto out;
		for (size_t i = 0; i < sizeof(fixed_rules) /
					sizeof(fixed_rules[0]); i++)
			if ((rc = add_path(r, &n, fixed_rules[i].path,
					   fixed_rules[i].access, msg,
					   len)) < 0)
				goto out;
	}
	if (c->uid != (uid_t)-1 && (c->uid != geteuid() ||
				    c->gid != getegid())) {
		if ((rc = drop(c, msg, len)) < 0)
			goto out;
		rep->dropped = 1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(msg, len, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		goto out;
	}
	if (abi > 0) {
		if ((rc = landlock(abi, r, n, msg, len)) < 0)
			goto out;
		rep->landlock_abi = abi;
	}
	rc = seccomp(msg, len);
out:
	for (int i = 0; i < n; i++)
		close(r[i].fd);
	return rc;
}
