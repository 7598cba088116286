/* vsi.c - GDAL virtual file systems of a worker: the source tree beneath
 * the root, pinned descriptors, refused network paths (see vsi.h).
 *
 * Design notes:
 *  1. GDAL's plugin API (cpl_vsi.h, GDAL >= 3.0) calls back with the name
 *     after the prefix.  The tree handler resolves it with openat2
 *     RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS against the worker's root
 *     descriptor: the kernel, not a string check, decides whether a name
 *     stays inside (".." that stays inside and symlinks that stay inside
 *     work; EXDEV otherwise).
 *  2. A pinned name is read with pread on the pinned descriptor.  It is
 *     never reopened through /proc/self/fd/N: that re-open is a path walk
 *     to the real file, which Landlock checks (and refuses for a prefix
 *     object in the store).  Handles share the descriptor; each keeps its
 *     own position.
 *  3. Opens are O_NONBLOCK, then fstat: anything but a regular file (a
 *     FIFO would block until a writer comes) is refused at once and
 *     recorded; directories are refused without a record (GDAL probes
 *     them).  O_NONBLOCK is then cleared: reads of regular files never
 *     block anyway, but GDAL expects plain files.
 *  4. A refusal is recorded only where a source made GDAL ask for
 *     something it may not have; a plain "no such file" (GDAL probing for
 *     sidecars) is not a refusal.
 *  5. An output carries its source's read permissions (fs.c), and the
 *     worker may read more than its readers (it may run as root, or as
 *     the owner of the whole tree).  So a file a source refers to must be
 *     readable by everyone who may read the source, judged by the mode
 *     bits as the kernel applies them (owner, else group, else others);
 *     else a 0644 VRT over a 0600 file would hand the file's pixels to
 *     everyone.  Judged conservatively: ACLs and supplementary groups are
 *     not looked at, so a doubt is a refusal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "rasterfs/vsi.h"

#define MAX_PINS 4
#define MAX_REFUSALS 8

enum why {
	WHY_OUTSIDE,      /* leads out of the source root */
	WHY_NOT_REGULAR,  /* a FIFO, socket or device */
	WHY_NETWORK,      /* a network file system */
	WHY_STDIO,        /* stdin / stdout */
	WHY_DENIED,       /* an absolute path the kernel refused */
	WHY_LESS_READABLE,/* fewer users may read it than the source */
};

static const char *const why_text[] = {
	[WHY_OUTSIDE] = "outside the source directory",
	[WHY_NOT_REGULAR] = "which is not a regular file (a FIFO, socket or "
			    "device)",
	[WHY_NETWORK] = "a network location: workers have no network access",
	[WHY_STDIO] = "standard input or output, which workers do not read "
		      "or write",
	[WHY_DENIED] = "outside the directories a worker may read (the "
		       "source directory, GDAL's and PROJ's data)",
	[WHY_LESS_READABLE] = "which fewer users may read than the source: "
			      "its outputs, readable by whoever reads the "
			      "source, would show it to them",
};

struct pin {
	const char *prefix;   /* RFS_VSI_TREE or RFS_VSI_PIN */
	char *name;           /* after the prefix */
	int fd;
};

static struct {
	pthread_mutex_t lock;
	int rootfd;
	char *root;            /* its absolute path */
	char *scratch;         /* the working directory: the worker's own
	                          files (a cache inside the tree) */
	int have_src;          /* src holds the pinned source's stat */
	struct stat src;
	struct pin pins[MAX_PINS];
	int npins;
	struct {
		char path[512];
		enum why why;
	} refused[MAX_REFUSALS];
	int nrefused;
} vs = { .lock = PTHREAD_MUTEX_INITIALIZER, .rootfd = -1 };

/* A GDAL file handle. */
struct vh {
	int fd;
	int own;              /* close fd with the handle (not a pin) */
	uint64_t pos;
	int eof;
};

static void refuse(const char *prefix, const char *name, enum why why)
{
	char full[sizeof(vs.refused[0].path)];

	snprintf(full, sizeof(full), "%s%s", prefix, name);
	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < vs.nrefused; i++)
		if (vs.refused[i].why == why &&
		    strcmp(vs.refused[i].path, full) == 0)
			goto out;
	if (vs.nrefused < MAX_REFUSALS) {
		memcpy(vs.refused[vs.nrefused].path, full, sizeof(full));
		vs.refused[vs.nrefused].why = why;
		vs.nrefused++;
	}
out:
	pthread_mutex_unlock(&vs.lock);
}

void rfs_vsi_reset(void)
{
	pthread_mutex_lock(&vs.lock);
	vs.nrefused = 0;
	pthread_mutex_unlock(&vs.lock);
}

int rfs_vsi_refusal(char *buf, size_t len)
{
	int found = 0;

	pthread_mutex_lock(&vs.lock);
	if (vs.nrefused) {
		snprintf(buf, len, "the source refers to %s, %s",
			 vs.refused[0].path, why_text[vs.refused[0].why]);
		found = 1;
	}
	pthread_mutex_unlock(&vs.lock);
	return found;
}

int rfs_vsi_pin(const char *gdal_name, int fd)
{
	const char *prefix = NULL;
	int rc = 0;

	if (!strncmp(gdal_name, RFS_VSI_TREE, strlen(RFS_VSI_TREE)))
		prefix = RFS_VSI_TREE;
	else if (!strncmp(gdal_name, RFS_VSI_PIN, strlen(RFS_VSI_PIN)))
		prefix = RFS_VSI_PIN;
	if (!prefix)
		return -EINVAL;
	pthread_mutex_lock(&vs.lock);
	if (vs.npins == MAX_PINS) {
		rc = -ENOSPC;
	} else if (!(vs.pins[vs.npins].name =
		     strdup(gdal_name + strlen(prefix)))) {
		rc = -ENOMEM;
	} else {
		vs.pins[vs.npins].prefix = prefix;
		vs.pins[vs.npins].fd = fd;
		vs.npins++;
		/* the source of the files it refers to (note 5) */
		if (!strcmp(prefix, RFS_VSI_TREE) && fstat(fd, &vs.src) == 0)
			vs.have_src = 1;
	}
	pthread_mutex_unlock(&vs.lock);
	return rc;
}

void rfs_vsi_unpin_all(void)
{
	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < vs.npins; i++)
		free(vs.pins[i].name);
	vs.npins = 0;
	vs.have_src = 0;
	pthread_mutex_unlock(&vs.lock);
}

/* The pinned descriptor of name under prefix, or -1. */
static int pinned(const char *prefix, const char *name)
{
	int fd = -1;

	pthread_mutex_lock(&vs.lock);
	for (int i = 0; i < vs.npins && fd < 0; i++)
		if (!strcmp(vs.pins[i].prefix, prefix) &&
		    strcmp(vs.pins[i].name, name) == 0)
			fd = vs.pins[i].fd;
	pthread_mutex_unlock(&vs.lock);
	return fd;
}

/* openat2 beneath the root (note 1); records a name that leads out.
 * Returns the descriptor or -1 with errno set. */
static int open_beneath(const char *name, int flags)
{
	struct open_how how = {
		/* openat2 refuses O_PATH with other flags than these */
		.flags = (uint64_t)(flags | O_CLOEXEC |
				    (flags & O_PATH ? 0 : O_NOCTTY)),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, vs.rootfd, name[0] ? name : ".",
			      &how, sizeof(how));

	/* EXDEV: the walk would leave the root (RESOLVE_BENEATH).  ELOOP
	 * (a symlink loop inside) is a plain failure, not a refusal. */
	if (fd < 0 && errno == EXDEV) {
		/* named as below the root, as the user sees the tree */
		refuse("", name, WHY_OUTSIDE);
		errno = EACCES;
	}
	return fd;
}

static void fill_stat(VSIStatBufL *out, const struct stat *st)
{
	memset(out, 0, sizeof(*out));
	out->st_dev = st->st_dev;
	out->st_ino = st->st_ino;
	out->st_mode = st->st_mode;
	out->st_nlink = st->st_nlink;
	out->st_uid = st->st_uid;
	out->st_gid = st->st_gid;
	out->st_size = st->st_size;
	out->st_blksize = st->st_blksize;
	out->st_blocks = st->st_blocks;
	out->st_atime = st->st_atime;
	out->st_mtime = st->st_mtime;
	out->st_ctime = st->st_ctime;
}

static int tree_stat(void *ud, const char *name, VSIStatBufL *out, int flags)
{
	struct stat st;
	int fd = pinned(RFS_VSI_TREE, name), rc;
	(void)ud, (void)flags;

	if (fd >= 0)
		return fstat(fd, &st) == 0 ? (fill_stat(out, &st), 0) : -1;
	/* O_PATH: no open of the file itself, so a FIFO cannot block */
	if ((fd = open_beneath(name, O_PATH)) < 0)
		return -1;
	rc = fstat(fd, &st);
	close(fd);
	if (rc < 0)
		return -1;
	fill_stat(out, &st);
	return 0;
}

static struct vh *handle_new(int fd, int own)
{
	struct vh *h = calloc(1, sizeof(*h));

	if (!h) {
		if (own)
			close(fd);
		errno = ENOMEM;
		return NULL;
	}
	h->fd = fd;
	h->own = own;
	return h;
}

static int read_only(const char *access)
{
	return !strpbrk(access, "wa+");
}

/* May everyone who may read the source (by its mode bits) read f too
 * (note 5)?  The kernel judges a reader by f's owner bits if it owns f,
 * else by f's group bits if it is in f's group, else by f's other bits.
 * Group membership is not known here (the worker cannot read /etc), so a
 * reader who might be f's owner or in f's group must pass those bits
 * too. */
static int as_readable(const struct stat *src, const struct stat *f)
{
	const int usr = (f->st_mode & S_IRUSR) != 0;
	const int grp = (f->st_mode & S_IRGRP) != 0;
	const int oth = (f->st_mode & S_IROTH) != 0;
	const int same_uid = f->st_uid == src->st_uid;
	const int same_gid = f->st_gid == src->st_gid;

	/* the source's owner: f's owner, or anybody else */
	if ((src->st_mode & S_IRUSR) &&
	    !(same_uid ? usr : grp && oth))
		return 0;
	/* members of the source's group: maybe f's owner; all in f's group
	 * if it is the same group, else maybe */
	if ((src->st_mode & S_IRGRP) &&
	    !((same_uid || usr) && (same_gid ? grp : grp && oth)))
		return 0;
	/* everybody else: maybe f's owner, maybe in f's group */
	if ((src->st_mode & S_IROTH) &&
	    !(oth && (same_uid || usr) && (same_gid || grp)))
		return 0;
	return 1;
}

/* A regular file beneath the root, opened without blocking (note 3). */
static void *tree_open(void *ud, const char *name, const char *access)
{
	struct stat st;
	int fd = pinned(RFS_VSI_TREE, name);
	(void)ud;

	if (!read_only(access)) {
		errno = EROFS;
		return NULL;
	}
	if (fd >= 0)
		return handle_new(fd, 0);
	if ((fd = open_beneath(name, O_RDONLY | O_NONBLOCK)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		refuse("", name, WHY_NOT_REGULAR);
		errno = EACCES;
		goto fail;
	}
	pthread_mutex_lock(&vs.lock);
	int ok = !vs.have_src || as_readable(&vs.src, &st);
	pthread_mutex_unlock(&vs.lock);
	if (!ok) {
		refuse("", name, WHY_LESS_READABLE);
		errno = EACCES;
		goto fail;
	}
	if (fcntl(fd, F_SETFL, 0) < 0)
		goto fail;
	return handle_new(fd, 1);
fail:;
	int e = errno;
	close(fd);
	errno = e;
	return NULL;
}

static char **tree_read_dir(void *ud, const char *name, int max)
{
	char **list = NULL;
	int n = 0, fd;
	DIR *d;
	(void)ud;

	if ((fd = open_beneath(name, O_RDONLY | O_DIRECTORY)) < 0)
		return NULL;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return NULL;
	}
	for (struct dirent *e; (e = readdir(d)) && (max <= 0 || n < max);) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		list = CSLAddString(list, e->d_name);
		n++;
	}
	closedir(d);
	/* an empty directory: an empty list, not "unknown" */
	return list ? list : CPLCalloc(1, sizeof(char *));
}

static int pin_stat(void *ud, const char *name, VSIStatBufL *out, int flags)
{
	struct stat st;
	int fd = pinned(RFS_VSI_PIN, name);
	(void)ud, (void)flags;

	if (fd < 0) {
		errno = ENOENT;
		return -1;
	}
	if (fstat(fd, &st) < 0)
		return -1;
	fill_stat(out, &st);
	return 0;
}

static void *pin_open(void *ud, const char *name, const char *access)
{
	int fd = pinned(RFS_VSI_PIN, name);
	(void)ud;

	if (!read_only(access)) {
		errno = EROFS;
		return NULL;
	}
	if (fd < 0) {
		errno = ENOENT;
		return NULL;
	}
	return handle_new(fd, 0);
}

static size_t vh_read(void *f, void *buf, size_t size, size_t count)
{
	struct vh *h = f;
	size_t want, got = 0;

	if (size == 0 || count == 0)
		return 0;
	want = size * count;
	while (got < want) {
		ssize_t n = pread(h->fd, (char *)buf + got, want - got,
				  (off_t)(h->pos + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	h->pos += got;
	if (got < want)
		h->eof = 1;
	return got / size;
}

static int vh_seek(void *f, vsi_l_offset off, int whence)
{
	struct vh *h = f;
	struct stat st;

	switch (whence) {
	case SEEK_SET:
		h->pos = off;
		break;
	case SEEK_CUR:
		h->pos += off;
		break;
	case SEEK_END:
		if (fstat(h->fd, &st) < 0)
			return -1;
		h->pos = (uint64_t)st.st_size + off;
		break;
	default:
		errno = EINVAL;
		return -1;
	}
	h->eof = 0;
	return 0;
}

static vsi_l_offset vh_tell(void *f)
{
	return ((struct vh *)f)->pos;
}

static int vh_eof(void *f)
{
	return ((struct vh *)f)->eof;
}

static int vh_close(void *f)
{
	struct vh *h = f;

	if (h->own)
		close(h->fd);
	free(h);
	return 0;
}

/* The refusing handlers: pUserData is the prefix (static text). */
static int refuse_stat(void *ud, const char *name, VSIStatBufL *out,
		       int flags)
{
	const char *prefix = ud;
	(void)out, (void)flags;

	refuse(prefix, name, strstr(prefix, "std") ? WHY_STDIO : WHY_NETWORK);
	errno = EACCES;
	return -1;
}

static void *refuse_open(void *ud, const char *name, const char *access)
{
	(void)access;
	refuse_stat(ud, name, NULL, 0);
	return NULL;
}

static char **refuse_read_dir(void *ud, const char *name, int max)
{
	(void)max;
	refuse_stat(ud, name, NULL, 0);
	return NULL;
}

/* GDAL 3.6's network and stdio file systems
 * (VSIGetFileSystemsPrefixes(); /vsihdfs/ when built with it). */
static const char *const refused_prefixes[] = {
	"/vsicurl/", "/vsicurl_streaming/", "/vsis3/", "/vsis3_streaming/",
	"/vsigs/", "/vsigs_streaming/", "/vsiaz/", "/vsiaz_streaming/",
	"/vsiadls/", "/vsioss/", "/vsioss_streaming/", "/vsiswift/",
	"/vsiswift_streaming/", "/vsiwebhdfs/", "/vsihdfs/", "/vsistdin/",
	"/vsistdin?", "/vsistdout/", "/vsistdout_redirect/",
};

/* Drivers that open network connections by themselves (not through
 * /vsicurl/), present in Debian's GDAL 3.6 or possible in a build. */
static const char *const network_drivers[] = {
	"HTTP", "WMS", "WMTS", "WCS", "PostGISRaster", "EEDAI", "EEDA",
	"DAAS", "PLMOSAIC", "PLSCENES", "OGCAPI", "NGW", "WFS", "OAPIF",
	"CSW", "Elasticsearch", "CouchDB", "Carto", "AmigoCloud",
	"MongoDBv3", "PostgreSQL", "MySQL", "MSSQLSpatial", "OCI", "ODBC",
	"GPSBabel", "TileDB",
};

static int install(const char *prefix, void *ud,
		   VSIFilesystemPluginStatCallback st,
		   VSIFilesystemPluginOpenCallback op,
		   VSIFilesystemPluginReadDirCallback rd)
{
	VSIFilesystemPluginCallbacksStruct *cb =
		VSIAllocFilesystemPluginCallbacksStruct();

	if (!cb)
		return -ENOMEM;
	cb->pUserData = ud;
	cb->stat = st;
	cb->open = op;
	cb->read_dir = rd;
	cb->read = vh_read;
	cb->seek = vh_seek;
	cb->tell = vh_tell;
	cb->eof = vh_eof;
	cb->close = vh_close;
	/* GDAL copies the struct; prefix must live on (static text). */
	VSIInstallPluginHandler(prefix, cb);
	VSIFreeFilesystemPluginCallbacksStruct(cb);
	return 0;
}

int rfs_vsi_install(int rootfd, const char *root)
{
	int rc;

	vs.rootfd = rootfd;
	if (!(vs.root = strdup(root)) || !(vs.scratch = getcwd(NULL, 0)))
		return -ENOMEM;
	if ((rc = install(RFS_VSI_TREE, NULL, tree_stat, tree_open,
			  tree_read_dir)) < 0 ||
	    (rc = install(RFS_VSI_PIN, NULL, pin_stat, pin_open, NULL)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(refused_prefixes) /
				sizeof(refused_prefixes[0]); i++)
		if ((rc = install(refused_prefixes[i],
				  (void *)refused_prefixes[i], refuse_stat,
				  refuse_open, refuse_read_dir)) < 0)
			return rc;
	for (size_t i = 0; i < sizeof(network_drivers) /
				sizeof(network_drivers[0]); i++) {
		GDALDriverH d = GDALGetDriverByName(network_drivers[i]);
		if (d)
			GDALDeregisterDriver(d);
	}
	CPLSetConfigOption("PROJ_NETWORK", "OFF");
	CPLSetConfigOption("GDAL_VRT_ENABLE_PYTHON", "NO");
	CPLSetConfigOption("GDAL_HTTP_TIMEOUT", "1");
	CPLSetConfigOption("GDAL_HTTP_CONNECTTIMEOUT", "1");
	CPLSetConfigOption("GDAL_HTTP_MAX_RETRY", "0");
	return 0;
}

void rfs_vsi_check_open_files(void)
{
	char link[64], path[4096];
	const size_t rl = vs.root ? strlen(vs.root) : 0;
	const size_t sl = vs.scratch ? strlen(vs.scratch) : 0;
	struct stat src, st;
	DIR *d;

	pthread_mutex_lock(&vs.lock);
	int have = vs.have_src;
	src = vs.src;
	pthread_mutex_unlock(&vs.lock);
	if (!have || !rl || !(d = opendir("/proc/self/fd")))
		return;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name), pin = 0;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, path, sizeof(path) - 1);
		if (n <= (ssize_t)rl || fd == dirfd(d))
			continue;
		path[n] = '\0';
		pthread_mutex_lock(&vs.lock);
		for (int i = 0; i < vs.npins; i++)
			pin |= vs.pins[i].fd == fd;
		pthread_mutex_unlock(&vs.lock);
		if (pin || (sl && !strncmp(path, vs.scratch, sl) &&
			    path[sl] == '/'))
			continue;
		/* inside the root, and a regular file (not the root itself,
		 * not a socket or pipe: those read as "socket:[...]") */
		if (strncmp(path, vs.root, rl) || path[rl] != '/' ||
		    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    as_readable(&src, &st))
			continue;
		refuse("", path + rl + 1, WHY_LESS_READABLE);
	}
	closedir(d);
}

/* Is c a character that may end a path in a GDAL message? */
static int path_end(char c)
{
	return c == '\0' || c == ' ' || c == '\'' || c == '"' || c == '`' ||
	       c == '\n' || c == ')' || c == ',';
}

void rfs_vsi_note_error(const char *msg)
{
	char path[512];

	for (const char *p = msg; p && *p; p++) {
		/* A URL that GDAL's own file handler was given (a VRT source
		 * "http://..."): it went nowhere, but the source wanted the
		 * network. */
		if ((p == msg || path_end(p[-1])) &&
		    (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8) ||
		     !strncmp(p, "ftp://", 6))) {
			size_t n = 0;
			while (!path_end(p[n]) && n < sizeof(path) - 1)
				n++;
			memcpy(path, p, n);
			path[n] = '\0';
			if (n > 1 && path[n - 1] == ':')
				path[n - 1] = '\0';
			refuse("", path, WHY_NETWORK);
			p += n - 1;
			continue;
		}
		if (*p != '/' || (p > msg && !path_end(p[-1]) &&
				  p[-1] != '(' && p[-1] != ':' &&
				  p[-1] != '='))
			continue;
		size_t n = 0;
		while (!path_end(p[n]) && n < sizeof(path) - 1)
			n++;
		memcpy(path, p, n);
		path[n] = '\0';
		/* "path: No such file" and a sentence's full stop */
		while (n > 1 && (path[n - 1] == ':' || path[n - 1] == '.'))
			path[--n] = '\0';
		p += n ? n - 1 : 0;
		if (n < 2 || !strncmp(path, "/vsi", 4))
			continue;
		/* GDAL glues words to paths ("x.bin.Permission denied"):
		 * try shorter names, cut at a '.', until one exists. */
		for (int tries = 0; tries < 4; tries++) {
			int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
				      O_CLOEXEC);
			if (fd >= 0) {
				close(fd);
				break;
			}
			if (errno == EACCES) {
				refuse("", path, WHY_DENIED);
				break;
			}
			char *dot = strrchr(path, '.');
			if (errno != ENOENT || !dot || dot < strrchr(path, '/'))
				break;
			*dot = '\0';
		}
	}
}
