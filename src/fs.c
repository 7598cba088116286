/* fs.c - the FUSE low-level operations.
 *
 * Design notes:
 *  1. Helpers return 0 or a negative code; only the thin op wrappers call
 *     fuse_reply_*, with rfs_err_errno() turning codes into errnos.
 *  2. Lookup and getattr never compute.  A virtual name whose output is not
 *     known yet reports size 0 with attribute timeout 0, so the kernel asks
 *     again (it also refreshes attributes on a read past the provisional
 *     EOF); open starts or joins the job and is answered when it ends.
 *  3. A waiting open holds no thread: its request is parked with the job and
 *     replied to from the pool's or the committer's thread.  An interrupt
 *     (Ctrl-C on the reader) answers EINTR at once and detaches the waiter
 *     from the job; the pool cancels a job whose last waiter went this way
 *     (rfs_pool_cancel_waiter, called under the request's lock).
 *  4. A virtual node stands for one key: its path, its source's identity
 *     when the lookup made it, and its canonical chain, all fixed for the
 *     node's life.  A later lookup that finds another identity for the name
 *     makes a new node (the kernel then forgets the old one when it likes).
 *     So a node's content never changes: every open keeps the kernel's page
 *     cache (keep_cache), and a handle reads the object it opened through
 *     its own fd (the store unlinks objects, never rewrites them).
 *  5. Once a node's output size is known (getattr found its entry, or an
 *     open opened its object) the size and mtime are sticky: eviction, a
 *     recompute or a changed source never change them (same key, same
 *     bytes), so the kernel's EOF never moves under an open handle and no
 *     read ends short with success.  Mode and owner are the source's (its
 *     read bits only), refreshed while the source keeps the node's identity,
 *     and checked by the kernel (default_permissions).
 *  6. An open (or an xattr) of a node whose source now has another identity
 *     fails with ESTALE.  The VFS then looks the name up again with
 *     LOOKUP_REVAL and retries once (do_filp_open; path getxattr likewise
 *     with retry_estale), which finds the new node (note 4): a reader gets
 *     the output of the source as it is now, or an error, never the old
 *     node's key computed from the new file.
 *  7. A node holds only what serving it needs (node.h): the canonical text,
 *     not the parsed chain, so 10^5 looked-up names cost tens of MB.
 */
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
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/step.h"
#include "rasterfs/err.h"
#include "rasterfs/fs.h"
#include "rasterfs/log.h"
#include "rasterfs/ops.h"

#define BLKSIZE (1 << 20) /* st_blksize: invites large reads (cp, GDAL) */

static struct rfs_fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct rfs_node *node_of(fuse_req_t req, fuse_ino_t ino)
{
	return rfs_nodes_find(fs_of(req)->nodes, ino);
}

/* --- names --------------------------------------------------------- */

/* Files GDAL looks for beside a dataset.  None of them exists beside a
 * virtual name, and none may start a job. */
static const char *const probe_suffixes[] = {
	".aux.xml", ".ovr", ".msk", ".aux", ".xml", ".tfw", ".tifw", ".wld",
	".prj", ".imd", ".rpb", "_rpc.txt", ".pvl", ".tab", ".vat.dbf",
	".ovr.aux.xml", ".msk.aux.xml", ".gfs", ".lock", ".lck",
};

int rfs_fs_is_probe(const char *name)
{
	size_t n = strlen(name);

	if (!strchr(name, '@'))
		return 0;
	for (size_t i = 0; i < sizeof(probe_suffixes) / sizeof(*probe_suffixes);
	     i++) {
		size_t l = strlen(probe_suffixes[i]);
		if (n > l && strcasecmp(name + n - l, probe_suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

/* World file siblings of a fmt=png output (op_format.c writes their text
 * into the PNG): for "X.png" GDAL's PNG driver looks for "X.pgw", then
 * "X.pngw", then "X.wld" (upper case too); and any png name V has "V.pgw",
 * "V.pngw" and "V.wld".  The length of the suffix, or 0. */
static size_t world_suffix(const char *name)
{
	static const char *const sfx[] = { ".pgw", ".pngw", ".wld" };
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(sfx) / sizeof(*sfx); i++) {
		size_t l = strlen(sfx[i]);
		if (n > l && strcasecmp(name + n - l, sfx[i]) == 0)
			return l;
	}
	return 0;
}

/* A world file node: a virtual node of a png chain whose name ends with a
 * world file suffix (a png output's own name never does: the grammar
 * refuses "png.pgw").  It shares the png's key, so it never has a job of
 * its own. */
static bool is_world(const struct rfs_node *n)
{
	return n->kind == RFS_NODE_VIRTUAL &&
	       n->format == RFS_FMT_PNG && world_suffix(n->path) > 0;
}

static int join_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = dir[0] ? snprintf(buf, len, "%s/%s", dir, name) :
			 snprintf(buf, len, "%s", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* path below the root -> path relative to rootfd ("" -> ".") */
static const char *rel(const char *path)
{
	return path[0] ? path : ".";
}

/* Is the file at path (below the root) inside the root once every symlink
 * is followed?  Writes the absolute resolved path to abs. */
static int check_inside(struct rfs_fs *fs, const char *path, char *abs)
{
	char joined[PATH_MAX];

	if (snprintf(joined, sizeof(joined), "%s/%s", fs->root, path) >=
	    (int)sizeof(joined))
		return -ENAMETOOLONG;
	if (!realpath(joined, abs))
		return -errno;
	if (strncmp(abs, fs->root, fs->rootlen) != 0 ||
	    (abs[fs->rootlen] != '/' && fs->rootlen > 1))
		return -RFS_E_ESCAPE;
	return 0;
}

/* Open the source at path (below the root) once, for a job (pool.c note
 * 10): beneath the root whatever its symlinks say (openat2
 * RESOLVE_BENEATH), without blocking on a FIFO (O_NONBLOCK, then only a
 * regular file is kept), read-only.  The key is made from this
 * descriptor's fstat, so the key and the bytes a worker reads agree by
 * construction.  Returns the descriptor (O_CLOEXEC, blocking again) and
 * its stat in *st, or -RFS_E_ESCAPE (it leads outside the root), -ENOENT
 * (gone, or not a regular file), -errno. */
static int pin_source(struct rfs_fs *fs, const char *path, struct stat *st)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	char abs[PATH_MAX];
	int fd = (int)syscall(SYS_openat2, fs->rootfd, path, &how, sizeof(how));
	int rc;

	if (fd < 0 && errno == EXDEV) {
		/* RESOLVE_BENEATH refuses every absolute symlink, even one
		 * that points inside the root: resolve it and open the
		 * result beneath the root again, so a swap in between can
		 * only fail, never leave the root. */
		if ((rc = check_inside(fs, path, abs)) < 0)
			return rc;
		const char *r = abs + fs->rootlen;
		while (*r == '/')
			r++;
		fd = (int)syscall(SYS_openat2, fs->rootfd, rel(r), &how,
				  sizeof(how));
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

/* The source of virtual node n, pinned (pin_source): the descriptor, or
 * -ESTALE when the name now means another file than the node's key was
 * made from (note 6: the kernel looks the name up again and retries),
 * -RFS_E_ESCAPE, -ENOENT, -errno. */
static int pin_node_source(struct rfs_fs *fs, struct rfs_node *n)
{
	struct stat st;
	struct rfs_src_id id;
	int fd = pin_source(fs, n->src, &st);

	if (fd < 0)
		return fd;
	rfs_src_id_from_stat(&id, &st);
	if (!rfs_node_same_source(n, &id)) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/* Split a virtual name in directory dir into its source and its chain, and
 * check the chain.  The source is the longest prefix, ending before an '@',
 * that names a regular file. */
static int resolve_virtual(struct rfs_fs *fs, const char *dir,
			   const char *name, char *src, struct rfs_chain *chain,
			   struct stat *sst, char *msg, size_t msglen)
{
	char abs[PATH_MAX], prefix[NAME_MAX + 1];
	size_t n = strlen(name);
	int rc;

	for (size_t i = n; i-- > 0;) {
		if (name[i] != '@' || i == 0)
			continue;
		memcpy(prefix, name, i);
		prefix[i] = '\0';
		if (strcmp(prefix, "..") == 0 || strcmp(prefix, ".") == 0)
			continue;
		if ((rc = join_path(src, PATH_MAX, dir, prefix)) < 0)
			return rc;
		if (fstatat(fs->rootfd, src, sst, 0) < 0 ||
		    !S_ISREG(sst->st_mode))
			continue;
		rc = rfs_chain_parse(name + i + 1, chain, msg, msglen);
		if (rc < 0)
			return rc;
		for (int s = 0; s < chain->nsteps; s++) {
			/* the step table says which steps name a CRS */
			const char *crs = rfs_step_crs(&chain->steps[s]);
			if (crs && (rc = rfs_crs_check(crs, msg, msglen)) < 0)
				return rc;
		}
		rc = check_inside(fs, src, abs);
		if (rc == -RFS_E_ESCAPE)
			snprintf(msg, msglen,
				 "the source '%.100s' is a symlink that leaves "
				 "the source directory %.100s (it resolves to "
				 "%.100s)",
				 src, fs->root, abs);
		return rc;
	}
	snprintf(msg, msglen,
		 "no regular file of the source tree is named by a prefix of "
		 "'%.300s' ending before an '@' (expected "
		 "FILE@step[@step...])",
		 name);
	return -RFS_E_NO_SOURCE;
}

/* The world file sibling name (world_suffix() > 0) of a png output in
 * dir: the png is name without the suffix, or, when the suffix is not
 * ".wld" (a GeoTIFF's probe "X.tif"->"X.wld" must stay a probe), name with
 * ".png" in place of it.  0 with src and chain of the png, or -ENOENT. */
static int resolve_world(struct rfs_fs *fs, const char *dir,
			 const char *name, char *src, struct rfs_chain *chain,
			 struct stat *sst)
{
	char base[NAME_MAX + 1], msg[RFS_MSG_MAX];
	const size_t sl = world_suffix(name), bl = strlen(name) - sl;

	if (bl + 4 >= sizeof(base))
		return -ENOENT;
	memcpy(base, name, bl);
	base[bl] = '\0';
	if (strchr(base, '@') &&
	    resolve_virtual(fs, dir, base, src, chain, sst, msg,
			    sizeof(msg)) == 0 &&
	    chain->format == RFS_FMT_PNG)
		return 0;
	if (strcasecmp(name + bl, ".wld") == 0)
		return -ENOENT;
	memcpy(base + bl, ".png", 5);
	if (strchr(base, '@') &&
	    resolve_virtual(fs, dir, base, src, chain, sst, msg,
			    sizeof(msg)) == 0 &&
	    chain->format == RFS_FMT_PNG)
		return 0;
	return -ENOENT;
}

/* The world file text of a png object (fd), found in its tEXt chunk
 * keyed RFS_WORLDFILE_KEY, which op_format.c writes before the image data
 * (PNG 1.2 spec: 8-byte signature, then chunks of length, type, data,
 * CRC).  Returns its length, -ENODATA if the PNG has none (a source
 * without a geotransform), or -EIO. */
static int world_text(int fd, char *buf, size_t len)
{
	static const char sig[8] = "\x89PNG\r\n\x1a\n";
	const size_t kl = sizeof(RFS_WORLDFILE_KEY); /* with its NUL */
	unsigned char h[8];
	char data[512];
	off_t off = 8;

	if (pread(fd, h, 8, 0) != 8 || memcmp(h, sig, 8) != 0)
		return -EIO;
	while (pread(fd, h, 8, off) == 8) {
		const uint32_t cl = (uint32_t)h[0] << 24 | h[1] << 16 |
				    h[2] << 8 | h[3];
		if (memcmp(h + 4, "IDAT", 4) == 0 ||
		    memcmp(h + 4, "IEND", 4) == 0)
			break;
		if (memcmp(h + 4, "tEXt", 4) == 0 && cl > kl &&
		    cl - kl < len && cl <= sizeof(data) &&
		    pread(fd, data, cl, off + 8) == (ssize_t)cl &&
		    memcmp(data, RFS_WORLDFILE_KEY, kl) == 0) {
			memcpy(buf, data + kl, cl - kl);
			buf[cl - kl] = '\0';
			return (int)(cl - kl);
		}
		off += 12 + (off_t)cl;
	}
	return -ENODATA;
}

/* --- attributes ---------------------------------------------------- */

/* The source of n as it is now: 0 if it still has n's identity, -ESTALE if
 * it has another (note 6), -errno if it cannot be stat'ed.  *sst (may be
 * NULL) gets its stat. */
static int source_check(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *sst)
{
	struct stat st;
	struct rfs_src_id id;

	if (!sst)
		sst = &st;
	if (fstatat(fs->rootfd, n->src, sst, 0) < 0)
		return -errno;
	rfs_src_id_from_stat(&id, sst);
	return S_ISREG(sst->st_mode) && rfs_node_same_source(n, &id) ?
	       0 : -ESTALE;
}

/* Note 5: the first size known for n's output sticks.  Another size for
 * the same key later would break "same key, same bytes": the open that
 * finds it fails rather than serve a file of another length. */
static int node_learn_size(struct rfs_node *n, uint64_t size,
			   int64_t mtime_ns)
{
	int rc = 0;

	pthread_mutex_lock(&n->lock);
	if (!n->sized) {
		n->sized = true;
		n->size = size;
		n->mtime_ns = mtime_ns;
	} else if (n->size != size) {
		rc = -RFS_E_INTERNAL;
	}
	pthread_mutex_unlock(&n->lock);
	if (rc < 0)
		rfs_log(LOG_ERR, "%s: the output of one key now has %llu bytes, "
			"first seen with %llu: refusing to serve it (was a "
			"step not deterministic?)", n->path,
			(unsigned long long)size, (unsigned long long)n->size);
	return rc;
}

/* The size of a world node: the length of its png's world file text.
 * -ENOENT: the png is not in the store; -ENODATA: it has no world file
 * text. */
static int world_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size)
{
	char text[512];
	int fd = rfs_store_open_object(fs->store, &n->key), rc;

	if (fd < 0)
		return fd;
	rc = world_text(fd, text, sizeof(text));
	close(fd);
	if (rc < 0)
		return rc;
	*size = (uint64_t)rc;
	return 0;
}

static int virtual_attr(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *st, double *timeout)
{
	struct stat sst;
	struct rfs_store_entry e;
	uint64_t wsize;

	/* Note 5: owner and mode of the source while it is the node's. */
	if (source_check(fs, n, &sst) == 0) {
		pthread_mutex_lock(&n->lock);
		n->src_mode = sst.st_mode;
		n->src_uid = sst.st_uid;
		n->src_gid = sst.st_gid;
		pthread_mutex_unlock(&n->lock);
	}
	pthread_mutex_lock(&n->lock);
	bool sized = n->sized;
	pthread_mutex_unlock(&n->lock);
	if (!sized &&
	    rfs_store_lookup(fs->store, &n->key, &n->id, n->canonical,
			     &e) == 0) {
		int rc = 0;
		if (!is_world(n))
			node_learn_size(n, e.size, e.created_ns);
		else if ((rc = world_size(fs, n, &wsize)) == 0)
			node_learn_size(n, wsize, e.created_ns);
		else if (rc == -ENODATA)
			return -ENOENT; /* a png without a georeference */
	}
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_nlink = 1;
	st->st_blksize = BLKSIZE;
	pthread_mutex_lock(&n->lock);
	st->st_mode = S_IFREG | (n->src_mode & 0444);
	st->st_uid = n->src_uid;
	st->st_gid = n->src_gid;
	if (n->sized) {
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		st->st_mtim.tv_sec = n->mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = n->mtime_ns % 1000000000;
		*timeout = fs->timeout;
	} else {
		/* Note 2: provisional until the output is known. */
		st->st_mtim.tv_sec = n->id.mtime_ns / 1000000000;
		st->st_mtim.tv_nsec = n->id.mtime_ns % 1000000000;
		*timeout = 0;
	}
	pthread_mutex_unlock(&n->lock);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
	return 0;
}

static int real_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st)
{
	if (fstatat(fs->rootfd, rel(n->path), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	st->st_ino = n->ino;
	return 0;
}

static void ctl_attr(struct rfs_node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	if (n->kind == RFS_NODE_CTL_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		/* Generated at open and read with direct_io: size 0 is fine. */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_uid = getuid();
	st->st_gid = getgid();
}

static int node_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st,
		     double *timeout)
{
	*timeout = fs->timeout;
	switch (n->kind) {
	case RFS_NODE_REAL:
		return real_attr(fs, n, st);
	case RFS_NODE_VIRTUAL:
		return virtual_attr(fs, n, st, timeout);
	default:
		ctl_attr(n, st);
		return 0;
	}
}

/* --- lookup -------------------------------------------------------- */

/* The node of a virtual name: src, chain and the source's stat from
 * resolve_virtual/resolve_world (note 4: its key is fixed here). */
static struct rfs_node *virtual_node(struct rfs_fs *fs, const char *path,
				     const char *src,
				     const struct rfs_chain *chain,
				     const struct stat *sst)
{
	struct rfs_vnode_info vi = {
		.src = src,
		.canonical = chain->canonical,
		.format = chain->format,
		.st = sst,
	};

	rfs_src_id_from_stat(&vi.id, sst);
	rfs_key_make(&vi.key, &vi.id, chain->canonical);
	return rfs_nodes_get(fs->nodes, path, RFS_NODE_VIRTUAL, &vi);
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *dir = node_of(req, parent), *n;
	char path[PATH_MAX], src[PATH_MAX], msg[RFS_MSG_MAX] = "";
	struct rfs_chain chain;
	struct stat st;
	double timeout;
	int rc;

	memset(e, 0, sizeof(*e));
	if (dir->kind == RFS_NODE_CTL_DIR) {
		if (strcmp(name, "stats") == 0)
			n = &fs->ctl_stats;
		else if (strcmp(name, "jobs") == 0)
			n = &fs->ctl_jobs;
		else
			return -ENOENT;
		goto found;
	}
	if (dir->kind != RFS_NODE_REAL)
		return -ENOTDIR;
	if (dir->path[0] == '\0' && strcmp(name, RFS_CTL_DIR) == 0) {
		n = &fs->ctl_dir;
		goto found;
	}
	if ((rc = join_path(path, sizeof(path), dir->path, name)) < 0)
		return rc;

	/* A real file wins, even one whose name has an '@'. */
	if (fstatat(fs->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		n = rfs_nodes_get(fs->nodes, path, RFS_NODE_REAL, NULL);
		goto found;
	}
	if (errno != ENOENT || !strchr(name, '@'))
		return -errno;
	if (world_suffix(name) &&
	    resolve_world(fs, dir->path, name, src, &chain, &st) == 0) {
		n = virtual_node(fs, path, src, &chain, &st);
		goto found;
	}
	if (rfs_fs_is_probe(name)) {
		rfs_stat_inc(&fs->stats, probes);
		return -ENOENT;
	}
	rc = resolve_virtual(fs, dir->path, name, src, &chain, &st, msg,
			     sizeof(msg));
	if (rc < 0) {
		rfs_stat_inc(&fs->stats, bad_names);
		rfs_log(LOG_NOTICE, "%s: %s %s", path, rfs_err_name(rc), msg);
		return rc;
	}
	n = virtual_node(fs, path, src, &chain, &st);
found:
	if (!n)
		return -ENOMEM;
	if ((rc = node_attr(fs, n, &e->attr, &timeout)) < 0) {
		rfs_nodes_forget(fs->nodes, n->ino, 1);
		return rc;
	}
	e->ino = n->ino;
	e->attr_timeout = timeout;
	e->entry_timeout = fs->timeout;
	return 0;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int rc = do_lookup(req, parent, name, &e);

	if (rc == -ENOENT) {
		/* A negative entry: the kernel remembers it for a while, so
		 * GDAL's repeated sibling probes never reach us twice. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_of(req)->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc < 0)
		fuse_reply_err(req, rfs_err_errno(rc));
	else
		fuse_reply_entry(req, &e);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	rfs_nodes_forget(fs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		rfs_nodes_forget(fs_of(req)->nodes, forgets[i].ino,
				 forgets[i].nlookup);
	fuse_reply_none(req);
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct stat st;
	double timeout;
	int rc = node_attr(fs_of(req), node_of(req, ino), &st, &timeout);
	(void)fi;

	if (rc < 0)
		fuse_reply_err(req, rfs_err_errno(rc));
	else
		fuse_reply_attr(req, &st, timeout);
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_node *n = node_of(req, ino);
	char buf[PATH_MAX + 1];
	ssize_t len;

	if (n->kind != RFS_NODE_REAL) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	len = readlinkat(fs_of(req)->rootfd, rel(n->path), buf, PATH_MAX);
	if (len < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

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

static int snapshot_add(struct dir_snapshot *d, size_t *cap, const char *name,
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

/* The png outputs named "B.png" that have a node in a directory: GDAL
 * looks for a world file only among the names a directory lists when it
 * can list it, and virtual names are not listed, so a listing names the
 * "B.pgw" sibling of each of them whose output is in the store. */
struct png_seen {
	const char *dir;
	size_t dirlen;
	size_t n, cap;
	struct {
		char *name, *src, *canonical;
		struct rfs_src_id id;
		rfs_key key;
		fuse_ino_t ino;
	} *e;
};

static void png_seen_add(const struct rfs_node *n, void *arg)
{
	struct png_seen *ps = arg;
	const char *base = strrchr(n->path, '/');
	size_t bl;

	if (n->kind != RFS_NODE_VIRTUAL || n->format != RFS_FMT_PNG)
		return;
	base = base ? base + 1 : n->path;
	if ((size_t)(base - n->path) != (ps->dirlen ? ps->dirlen + 1 : 0) ||
	    strncmp(n->path, ps->dir, ps->dirlen) != 0)
		return;
	bl = strlen(base);
	if (bl < 5 || strcasecmp(base + bl - 4, ".png") != 0)
		return;
	if (ps->n == ps->cap) {
		size_t nc = ps->cap ? 2 * ps->cap : 16;
		void *ne = realloc(ps->e, nc * sizeof(*ps->e));
		if (!ne)
			return;
		ps->e = ne;
		ps->cap = nc;
	}
	ps->e[ps->n].name = strndup(base, bl - 4);
	ps->e[ps->n].src = strdup(n->src);
	ps->e[ps->n].canonical = strdup(n->canonical);
	ps->e[ps->n].id = n->id;
	ps->e[ps->n].key = n->key;
	ps->e[ps->n].ino = n->ino;
	ps->n++;
}

static int snapshot_add_worlds(struct rfs_fs *fs, struct rfs_node *dir,
			       struct dir_snapshot *d, size_t *cap)
{
	struct png_seen ps = { .dir = dir->path, .dirlen = strlen(dir->path) };
	char name[NAME_MAX + 1];
	int rc = 0;

	rfs_nodes_each(fs->nodes, png_seen_add, &ps);
	for (size_t i = 0; i < ps.n; i++) {
		struct stat sst;
		struct rfs_src_id id;

		/* only nodes of the source as it is now (note 4) */
		if (rc == 0 && ps.e[i].name && ps.e[i].src &&
		    ps.e[i].canonical &&
		    fstatat(fs->rootfd, ps.e[i].src, &sst, 0) == 0 &&
		    (rfs_src_id_from_stat(&id, &sst),
		     !memcmp(&id, &ps.e[i].id, sizeof(id))) &&
		    snprintf(name, sizeof(name), "%s.pgw", ps.e[i].name) <
		    (int)sizeof(name) &&
		    rfs_store_lookup(fs->store, &ps.e[i].key, &id,
				     ps.e[i].canonical, NULL) == 0)
			rc = snapshot_add(d, cap, name, ps.e[i].ino, DT_REG);
		free(ps.e[i].name);
		free(ps.e[i].src);
		free(ps.e[i].canonical);
	}
	free(ps.e);
	return rc;
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

static void fs_opendir(fuse_req_t req, fuse_ino_t ino,
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

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
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

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	snapshot_free((struct dir_snapshot *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* --- open, read, release ------------------------------------------- */

/* A file handle: an fd of a real file or store object, or the text of a
 * control file. */
struct handle {
	int fd;
	size_t len;
	char text[];
};

static void handle_free(struct handle *h)
{
	if (h->fd >= 0)
		close(h->fd);
	free(h);
}

static int reply_open_fd(fuse_req_t req, struct fuse_file_info *fi, int fd,
			 int keep_cache, int direct_io)
{
	struct handle *h = malloc(sizeof(*h));

	if (!h) {
		close(fd);
		return fuse_reply_err(req, ENOMEM);
	}
	h->fd = fd;
	h->len = 0;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = keep_cache;
	fi->direct_io = direct_io;
	if (fuse_reply_open(req, fi) != 0) {
		/* The reader went away; no release will come. */
		handle_free(h);
		return -1;
	}
	return 0;
}

/* Reply to an open of n from the store, if its key's object is there:
 * 0 (replied), -ENOENT (not indexed, or evicted since: the caller asks
 * the pool), or another negative code (not replied).  A world node's
 * handle holds the text taken from the png, read with direct_io like a
 * control file; any other node's handle is the object's fd, and the page
 * cache is kept (note 4). */
static int open_from_store(struct rfs_fs *fs, struct rfs_node *n,
			   fuse_req_t req, struct fuse_file_info *fi)
{
	struct rfs_store_entry e;
	struct handle *h = NULL;
	struct stat ost;
	int fd, rc;

	rc = rfs_store_lookup(fs->store, &n->key, &n->id, n->canonical, &e);
	if (rc < 0)
		return rc;
	/* -ENOENT: evicted since the lookup (the entry went first, so a
	 * request now sees a miss and computes it again). */
	if ((fd = rfs_store_open_object(fs->store, &n->key)) < 0)
		return fd;
	if (is_world(n)) {
		if (!(h = malloc(sizeof(*h) + 512))) {
			rc = -ENOMEM;
			goto out;
		}
		h->fd = -1;
		if ((rc = world_text(fd, h->text, 512)) == -ENODATA) {
			/* a png without a georeference has no world file */
			fuse_reply_err(req, ENOENT);
			rc = 0;
			goto out;
		}
		if (rc < 0)
			goto out;
		h->len = (size_t)rc;
		if ((rc = node_learn_size(n, h->len, e.created_ns)) < 0)
			goto out;
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->direct_io = 1;
		if (fuse_reply_open(req, fi) != 0)
			free(h);
		h = NULL;
		rc = 0;
		goto out;
	}
	if (fstat(fd, &ost) < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = node_learn_size(n, (uint64_t)ost.st_size,
				  e.created_ns)) < 0)
		goto out;
	reply_open_fd(req, fi, fd, 1, 0);
	return 0;
out:
	free(h);
	close(fd);
	return rc;
}

struct open_waiter {
	fuse_req_t req;
	struct fuse_file_info fi;
	struct rfs_fs *fs;
	struct rfs_node *n;
	rfs_key key;
	atomic_int replied; /* note 3: whoever sets it first replies */
};

static void open_interrupted(fuse_req_t req, void *arg)
{
	struct open_waiter *w = arg;

	if (atomic_exchange(&w->replied, 1) != 0)
		return;
	fuse_reply_err(req, EINTR);
	/* Detached: the pool will not call open_job_done for w, so it is
	 * ours to free.  Not found: open_job_done frees it. */
	if (rfs_pool_cancel_waiter(w->fs->pool, &w->key, w) == 1)
		free(w);
}

/* Claim the right to reply; if the interrupt got there first, the request
 * is answered and must not be touched. */
static int waiter_claim(struct open_waiter *w)
{
	if (atomic_exchange(&w->replied, 1) != 0)
		return 0;
	/* Serialises with an interrupt callback under way and stops later
	 * ones, so the request stays ours until we reply. */
	fuse_req_interrupt_func(w->req, NULL, NULL);
	return 1;
}

static void open_failed(fuse_req_t req, struct rfs_node *n, int rc,
			const char *msg)
{
	rfs_log(LOG_DEBUG, "open %s: %s %s", n->path, rfs_err_name(rc),
		msg ? msg : "");
	fuse_reply_err(req, rfs_err_errno(rc));
}

static void open_job_done(void *arg, int rc, const char *msg)
{
	struct open_waiter *w = arg;

	if (waiter_claim(w)) {
		/* Called on the committer's thread right after the commit,
		 * before it can evict anything: only another mount sharing
		 * the store can have removed the object meanwhile. */
		if (rc == 0 &&
		    (rc = open_from_store(w->fs, w->n, w->req, &w->fi)) < 0) {
			if (rc == -ENOENT)
				rc = -RFS_E_STORE_IO;
			rfs_log(LOG_ERR, "open %s: the output was stored but "
				"cannot be opened: %s", w->n->path,
				rfs_strerror(rc));
		}
		if (rc < 0)
			open_failed(w->req, w->n, rc, msg);
	}
	free(w);
}

/* Ask the pool for n's key with the open parked as its waiter.  Returns 0
 * when the request is answered later (or was just answered EINTR), 1 when
 * the key was committed since the caller looked, or a negative code (not
 * replied). */
static int open_request(struct rfs_fs *fs, struct rfs_node *n,
			fuse_req_t req, struct fuse_file_info *fi)
{
	int src_fd = pin_node_source(fs, n);
	struct rfs_job_spec spec = {
		.key = n->key,
		.src = n->id,
		.src_fd = src_fd, /* the pool's from the request on */
		.source_rel = n->src,
		.canonical = n->canonical,
		.vpath = n->path,
		.uid = fuse_req_ctx(req)->uid,
	};
	struct open_waiter *w;
	int rc;

	if (src_fd < 0) {
		if (src_fd == -ESTALE)
			rfs_stat_inc(&fs->stats, stale_opens);
		else
			rfs_log(src_fd == -ENOENT ? LOG_DEBUG : LOG_WARNING,
				"open %s: cannot open its source %s: %s %s",
				n->path, n->src, rfs_err_name(src_fd),
				rfs_strerror(src_fd));
		return src_fd;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		close(src_fd);
		return -ENOMEM;
	}
	w->req = req;
	w->fi = *fi;
	w->fs = fs;
	w->n = n;
	w->key = n->key;
	/* Registered before the job can end, so the callback can always
	 * deregister it (note 3). */
	fuse_req_interrupt_func(req, open_interrupted, w);
	rc = rfs_pool_request(fs->pool, &spec, open_job_done, w);
	if (rc == 0) {
		rfs_stat_inc(&fs->stats, cache_misses);
		return 0; /* answered by open_job_done */
	}
	if (!waiter_claim(w))
		rc = 0; /* answered EINTR */
	free(w);
	if (rc < 0) {
		char msg[RFS_MSG_MAX] = "";
		rfs_pool_last_error(fs->pool, &n->key, NULL, msg, sizeof(msg),
				    NULL);
		rfs_log(LOG_DEBUG, "open %s: %s %s (remembered)", n->path,
			rfs_err_name(rc), msg);
	}
	return rc;
}

static void open_virtual(fuse_req_t req, struct rfs_node *n,
			 struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	int rc;

	/* Note 6: the name means another file now. */
	if ((rc = source_check(fs, n, NULL)) < 0) {
		if (rc == -ESTALE) {
			rfs_stat_inc(&fs->stats, stale_opens);
			rfs_log(LOG_DEBUG, "open %s: its source changed since "
				"the lookup: ESTALE", n->path);
		}
		fuse_reply_err(req, rfs_err_errno(rc));
		return;
	}
	/* An object can be evicted between its commit and our open of it
	 * (a tiny cache_size, concurrent readers): ask again, a few times. */
	for (int tries = 0; tries < 3; tries++) {
		rc = open_from_store(fs, n, req, fi);
		if (rc == 0) {
			rfs_stat_inc(&fs->stats, cache_hits);
			return;
		}
		if (rc != -ENOENT)
			break;
		rc = open_request(fs, n, req, fi);
		if (rc <= 0)
			break;
		rc = -ENOENT;
	}
	if (rc == 0)
		return;
	if (rc == -ENOENT) {
		rfs_log(LOG_ERR, "open %s: its output was evicted three times "
			"before it could be opened: cache_size is too small for "
			"the outputs read at once", n->path);
		rc = -RFS_E_STORE_IO;
	}
	open_failed(req, n, rc, NULL);
}

static void open_ctl(fuse_req_t req, struct rfs_node *node,
		     struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	size_t cap = 4096;
	char *jobs = NULL;
	size_t jobs_len = 0;

	if (node == &fs->ctl_jobs) {
		/* a user sees the jobs they asked for (pool.h) */
		int rc = rfs_pool_jobs_json(fs->pool, fuse_req_ctx(req)->uid,
					    &jobs, &jobs_len);
		if (rc < 0) {
			fuse_reply_err(req, rfs_err_errno(rc));
			return;
		}
		cap = jobs_len + 1;
	}
	struct handle *h = malloc(sizeof(*h) + cap);

	if (!h) {
		free(jobs);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->fd = -1;
	if (jobs) {
		memcpy(h->text, jobs, jobs_len);
		h->len = jobs_len;
		free(jobs);
	} else {
		atomic_store(&fs->stats.nodes, rfs_nodes_count(fs->nodes));
		int n = rfs_stats_json(&fs->stats, fs->store,
				       rfs_pool_workers(fs->pool), h->text,
				       cap);
		h->len = n < 0 ? 0 : (size_t)n;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1; /* a fresh snapshot per open; size unknown */
	if (fuse_reply_open(req, fi) != 0)
		handle_free(h);
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	switch (n->kind) {
	case RFS_NODE_REAL: {
		int fd = openat(fs->rootfd, n->path,
				O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
				(fi->flags & O_NONBLOCK));
		if (fd < 0)
			fuse_reply_err(req, errno);
		else
			reply_open_fd(req, fi, fd, 0, 0);
		return;
	}
	case RFS_NODE_VIRTUAL:
		open_virtual(req, n, fi);
		return;
	case RFS_NODE_CTL_FILE:
		open_ctl(req, n, fi);
		return;
	default:
		fuse_reply_err(req, EISDIR);
	}
}

static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	(void)ino;

	if (h->fd < 0) {
		if ((size_t)off >= h->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, h->text + off,
				       h->len - (size_t)off < size ?
				       h->len - (size_t)off : size);
		return;
	}
	/* Spliced from the file to the FUSE device when the kernel allows:
	 * the bytes are never copied through this process. */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = h->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	(void)ino;

	if (fstatvfs(fs_of(req)->rootfd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* --- extended attributes ------------------------------------------- */

/* A virtual file describes itself; reading these never starts a job.
 * Two more names are commands, never listed (getfattr -d must not run
 * them): user.rasterfs.warm queues the output's job with no reader
 * (answers "done", "queued", or "failed RFS-Ennn message"), and
 * user.rasterfs.cancel cancels its job (answers "cancelled" or "none"). */
static const char *const vattrs[] = {
	"user.rasterfs.chain", "user.rasterfs.key", "user.rasterfs.state",
	"user.rasterfs.source", "user.rasterfs.progress",
	"user.rasterfs.error",
};

/* getxattr user.rasterfs.warm: the `rasterfs warm` command. */
static int warm_xattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
		      char *buf, size_t len)
{
	char msg[RFS_MSG_MAX] = "";
	int rc = pin_node_source(fs, n);
	struct rfs_job_spec spec = {
		.key = n->key,
		.src = n->id,
		.src_fd = rc,
		.source_rel = n->src,
		.canonical = n->canonical,
		.vpath = n->path,
		.warm = 1,
		.uid = uid,
	};

	if (rc < 0)
		return rc;
	rc = rfs_pool_request(fs->pool, &spec, NULL, NULL);
	if (rc == 1)
		return snprintf(buf, len, "done");
	if (rc == 0)
		return snprintf(buf, len, "queued");
	rfs_pool_last_error(fs->pool, &n->key, NULL, msg, sizeof(msg), NULL);
	return snprintf(buf, len, "failed %s %s", rfs_err_name(rc),
			msg[0] ? msg : rfs_strerror(rc));
}

/* getxattr user.rasterfs.cancel: the pool decides who may (pool.h). */
static int cancel_xattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
			char *buf, size_t len)
{
	int rc = rfs_pool_cancel(fs->pool, &n->key, uid);

	if (rc == -EPERM) {
		rfs_log(LOG_NOTICE, "cancel %s refused: uid %lu is neither "
			"root, the mount's owner, nor the only user waiting "
			"for the job", n->path, (unsigned long)uid);
		return rc;
	}
	return snprintf(buf, len, "%s", rc == 0 ? "cancelled" : "none");
}

static int virtual_xattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
			 const char *name, char *buf, size_t len)
{
	const rfs_key *key = &n->key;
	int rc, w;

	/* Note 6: the name means another file now (every attribute
	 * describes, or acts on, the node's key). */
	if ((rc = source_check(fs, n, NULL)) < 0)
		return rc;
	if (strcmp(name, "user.rasterfs.warm") == 0) {
		w = warm_xattr(fs, n, uid, buf, len);
	} else if (strcmp(name, "user.rasterfs.cancel") == 0) {
		w = cancel_xattr(fs, n, uid, buf, len);
	} else if (strcmp(name, "user.rasterfs.progress") == 0) {
		double progress = 0;
		if (rfs_store_lookup(fs->store, key, &n->id, n->canonical,
				     NULL) == 0)
			progress = 1;
		else
			rfs_pool_job_state(fs->pool, key, NULL, &progress);
		w = snprintf(buf, len, "%.0f", 100 * progress);
	} else if (strcmp(name, "user.rasterfs.error") == 0) {
		char msg[RFS_MSG_MAX];
		int code;
		if (rfs_pool_last_error(fs->pool, key, &code, msg,
					sizeof(msg), NULL) < 0)
			return -ENODATA;
		w = snprintf(buf, len, "%s %s", rfs_err_name(code), msg);
	} else if (strcmp(name, "user.rasterfs.chain") == 0) {
		w = snprintf(buf, len, "%s", n->canonical);
	} else if (strcmp(name, "user.rasterfs.key") == 0) {
		char hex[RFS_KEY_HEX];
		rfs_key_hex(key, hex);
		w = snprintf(buf, len, "%s", hex);
	} else if (strcmp(name, "user.rasterfs.source") == 0) {
		w = snprintf(buf, len, "%s", n->src);
	} else if (strcmp(name, "user.rasterfs.state") == 0) {
		const char *state = "absent";
		if (rfs_store_lookup(fs->store, key, &n->id, n->canonical,
				     NULL) == 0)
			state = "done";
		else
			rfs_pool_job_state(fs->pool, key, &state, NULL);
		w = snprintf(buf, len, "%s", state);
	} else {
		return -ENODATA;
	}
	if (w < 0)
		return w;
	return (size_t)w >= len ? -ERANGE : w;
}

/* The getxattr/listxattr answer for len bytes of buf (len < 0: -errno),
 * when the caller's buffer holds size bytes (0: it asks for the size). */
static void reply_xattr(fuse_req_t req, const char *buf, ssize_t len,
			size_t size)
{
	if (len < 0)
		fuse_reply_err(req, (int)-len);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)len);
	else if ((size_t)len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, buf, (size_t)len);
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);
	char buf[PATH_MAX + RFS_CHAIN_TEXT_MAX];
	ssize_t len;

	if (n->kind == RFS_NODE_VIRTUAL) {
		len = virtual_xattr(fs, n, fuse_req_ctx(req)->uid, name, buf,
				    sizeof(buf));
	} else if (n->kind == RFS_NODE_REAL) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", fs->root, n->path);
		len = lgetxattr(path, name, buf, sizeof(buf));
		if (len < 0)
			len = -errno;
	} else {
		len = -ENODATA;
	}
	reply_xattr(req, buf, len, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rfs_fs *fs = fs_of(req);
	struct rfs_node *n = node_of(req, ino);
	char buf[4096];
	ssize_t len = 0;

	if (n->kind == RFS_NODE_VIRTUAL) {
		for (size_t i = 0; i < sizeof(vattrs) / sizeof(*vattrs); i++) {
			size_t l = strlen(vattrs[i]) + 1;
			memcpy(buf + len, vattrs[i], l);
			len += (ssize_t)l;
		}
	} else if (n->kind == RFS_NODE_REAL) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", fs->root, n->path);
		len = llistxattr(path, buf, sizeof(buf));
		if (len < 0)
			len = -errno;
	}
	reply_xattr(req, buf, len, size);
}

/* --- the rest: a read-only filesystem ------------------------------ */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	/* Large reads: GDAL and cp read big blocks of immutable objects. */
	conn->max_readahead = conn->max_readahead > (1u << 20) ?
			      conn->max_readahead : (1u << 20);
}

static void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			  int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EROFS);
}

static void erofs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EROFS);
}

static void erofs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void erofs_symlink(fuse_req_t req, const char *link,
			  fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname,
			 unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EROFS);
}

static void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void erofs_removexattr(fuse_req_t req, fuse_ino_t ino,
			      const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops rfs_fs_ops = {
	.init = fs_init,
	.lookup = fs_lookup,
	.forget = fs_forget,
	.forget_multi = fs_forget_multi,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.statfs = fs_statfs,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.setattr = erofs_setattr,
	.mknod = erofs_mknod,
	.mkdir = erofs_mkdir,
	.unlink = erofs_unlink,
	.rmdir = erofs_unlink,
	.symlink = erofs_symlink,
	.rename = erofs_rename,
	.link = erofs_link,
	.create = erofs_create,
	.setxattr = erofs_setxattr,
	.removexattr = erofs_removexattr,
};

int rfs_fs_init(struct rfs_fs *fs, const char *source_dir)
{
	char abs[PATH_MAX];
	struct stat st;

	memset(fs, 0, sizeof(*fs));
	fs->rootfd = -1;
	if (!realpath(source_dir, abs))
		return -errno;
	if (stat(abs, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	fs->rootfd = open(abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->rootfd < 0)
		return -errno;
	fs->root = strdup(abs);
	fs->rootlen = strlen(abs);
	fs->nodes = rfs_nodes_new();
	fs->timeout = 1.0;
	if (!fs->root || !fs->nodes) {
		rfs_fs_destroy(fs);
		return -ENOMEM;
	}
	fs->ctl_dir.kind = RFS_NODE_CTL_DIR;
	fs->ctl_dir.path = RFS_CTL_DIR;
	fs->ctl_dir.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_dir;
	fs->ctl_stats.kind = RFS_NODE_CTL_FILE;
	fs->ctl_stats.path = RFS_CTL_DIR "/stats";
	fs->ctl_stats.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_stats;
	fs->ctl_jobs.kind = RFS_NODE_CTL_FILE;
	fs->ctl_jobs.path = RFS_CTL_DIR "/jobs";
	fs->ctl_jobs.ino = (fuse_ino_t)(uintptr_t)&fs->ctl_jobs;
	return 0;
}

void rfs_fs_destroy(struct rfs_fs *fs)
{
	rfs_nodes_free(fs->nodes);
	free(fs->root);
	if (fs->rootfd >= 0)
		close(fs->rootfd);
	fs->nodes = NULL;
	fs->root = NULL;
	fs->rootfd = -1;
}
