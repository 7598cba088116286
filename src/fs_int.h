/* fs_int.h - private to the FUSE layer's rooms (src/fs*.c).
 *
 * The layer, from the top down (each room calls only those below it):
 *
 *   fs.c        the ops table and the thin wrappers that reply
 *   fs_ctl.c    the .rasterfs/ control files and the extended attributes
 *   fs_dir.c    directory listings
 *   fs_open.c   open: the store, or a job and its waiters; file handles
 *   fs_lazy.c   large outputs: opened at once, read by blocks (lazy.h)
 *   fs_node.c   lookup (resolve.h's answer made a node) and attributes
 *   fs_sidecar.c the sidecars of png outputs (world file, .aux.xml)
 *
 * below them resolve.c (what a name is), node.c (the inode table),
 * worldfile.c, the store and the pool.
 *
 * Only fs.c calls fuse_reply_*: every other function returns 0 or a
 * negative code.  An open parked with a job is answered later through the
 * reply function fs.c hands to fs_open_virtual.
 */
#ifndef RASTERFS_FS_INT_H
#define RASTERFS_FS_INT_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rasterfs/describer.h"
#include "rasterfs/node.h"
#include "rasterfs/pool.h"
#include "rasterfs/resolve.h"
#include "rasterfs/stats.h"
#include "rasterfs/store.h"

struct rfs_fs {
	struct rfs_root root;    /* the source root (resolve.h) */
	struct rfs_nodes *nodes;
	rfs_store *store;
	rfs_pool *pool;
	rfs_describer *describer; /* NULL: outputs stay provisional */
	struct rfs_stats stats;
	double timeout;          /* entry/attr timeout of stable answers */
	int want_passthrough;    /* the mount option passthrough= (default 1) */
	int lazy;                /* the mount option lazy= (default 1):
				    large outputs are computed by blocks
				    (fs_lazy.c) */
	pthread_mutex_t lazy_lock; /* lazy_assembling (fs_lazy.c note 7) */
	pthread_cond_t lazy_cv;
	int lazy_assembling;
	atomic_int lazy_stop;
	int complete;            /* complete= (default 0): an opened lazy
				    output is finished in the background
				    (fs_lazy.c note 6) */
	int passthrough;         /* decided at init: opens of files may be
				    served by passthrough (fs_open.c note 3) */
	atomic_int pt_refusals;  /* logged loudly once */
	struct fuse_session *se; /* for notifications (fs_open.c note 4) */
	char *run;               /* user.rasterfs.run's head (fs.h), or
				    NULL */
	struct rfs_node ctl_dir;
	struct rfs_node ctl_file[RFS_CTL_NFILES];
	struct fs_holders {      /* open png outputs (fs_sidecar.c note 2) */
		pthread_mutex_t lock;
		size_t n, cap;
		struct fs_holder *e;
	} holders;
};

/* path below the root -> path relative to root.fd ("" -> ".") */
static inline const char *fs_rel(const char *path)
{
	return path[0] ? path : ".";
}

/* ---- fs_sidecar.c ----------------------------------------------------- */

struct fs_handle;

enum fs_sidecar { FS_SIDECAR_NONE, FS_SIDECAR_WORLD, FS_SIDECAR_AUX };

/* Which sidecar of a png output n is: a virtual node of a png chain whose
 * name ends with a world file suffix or with ".aux.xml"; else NONE.  A
 * sidecar shares its png's key, so it never has a job of its own. */
enum fs_sidecar fs_sidecar_of(const struct rfs_node *n);

/* A text handle of sidecar n's text, from its png's store object fd: 0 and
 * *h, or 0 and *h NULL (the png has no such text: a png without a
 * georeference has no world file), -ENOMEM, -EIO. */
int fs_sidecar_open(const struct rfs_node *n, int fd, struct fs_handle **h);

/* The size of sidecar n: 0 and *size, or -ENOENT (its png is not in the
 * store), -ENODATA (no such text), -EIO. */
int fs_sidecar_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size);

/* Call add with the name of each sidecar the png open at fd has, the png
 * being named name: "B.pgw" for a name "B.png", and "name.aux.xml".
 * Stops at add's first nonzero return and returns it, or 0. */
int fs_sidecar_each(int fd, const char *name,
		    int (*add)(void *arg, const char *name), void *arg);

/* The table of open png outputs (note 2), in rfs_fs_new / rfs_fs_free.
 * init returns 0 or a negative errno. */
int fs_sidecar_init(struct rfs_fs *fs);
void fs_sidecar_fini(struct rfs_fs *fs);

/* Handle h was just opened by thread pid: if it is a png output's, its
 * sidecars are listed to pid's process until fs_sidecar_drop(h).  Before
 * the open's reply.  Cannot fail (out of memory: not listed). */
void fs_sidecar_hold(struct rfs_fs *fs, const struct fs_handle *h, pid_t pid);
void fs_sidecar_drop(struct rfs_fs *fs, const struct fs_handle *h);

/* Call add for each sidecar a listing of real directory dir (below the
 * root) shows to thread pid: those of the png outputs in dir that pid's
 * process has open (note 2).  Stops at add's first nonzero return, and
 * returns it, or 0. */
int fs_sidecar_list(struct rfs_fs *fs, const char *dir, pid_t pid,
		    int (*add)(void *arg, const char *name, fuse_ino_t ino),
		    void *arg);

/* ---- fs_node.c -------------------------------------------------------- */

/* The source of n as it is now: 0 if it still has n's identity, -ESTALE if
 * it has another (fs_node.c note 6), -errno if it cannot be stat'ed.  *sst
 * (may be NULL) gets its stat. */
int fs_node_source_check(struct rfs_fs *fs, struct rfs_node *n,
			 struct stat *sst);

/* Note 3: the first size known for n's output sticks.  Returns 0, or
 * -RFS_E_INTERNAL when size differs from the size first seen.  mtime_ns
 * is not used (note 6: an output's mtime is its source's). */
int fs_node_learn_size(struct rfs_node *n, uint64_t size, int64_t mtime_ns);

/* The attributes of n, and how long the kernel may keep them.  Returns 0,
 * -ENOENT (a world node of a png without a georeference, an .aux.xml node
 * of a png not in the store), -errno. */
int fs_node_attr(struct rfs_fs *fs, struct rfs_node *n, struct stat *st,
		 double *timeout);

/* Look name up in directory node dir: a node counted once more, in *e.
 * Returns 0, -ENOENT (also for a probe), -ENOTDIR, -ENOMEM, or the code of
 * a bad virtual name (logged, counted). */
int fs_node_lookup(struct rfs_fs *fs, struct rfs_node *dir, const char *name,
		   struct fuse_entry_param *e);

/* How fs.c answers a lookup or a getattr that waited for a describe
 * (note 7): with e or st (rc 0), or the error rc.  entry returns what
 * fuse_reply_entry returned (nonzero: the kernel did not take the node). */
struct fs_node_replies {
	int (*entry)(fuse_req_t req, int rc, const struct fuse_entry_param *e);
	void (*attr)(fuse_req_t req, int rc, const struct stat *st,
		     double timeout);
};

#define FS_NODE_PARKED 1

/* fs_node_lookup, but a GeoTIFF output whose size is not known yet is
 * described first (note 7): 0 (answer e now), FS_NODE_PARKED (answered
 * through r->entry when the describe ends), or a negative code. */
int fs_node_lookup_async(struct rfs_fs *fs, struct rfs_node *dir,
			 const char *name, fuse_req_t req,
			 const struct fs_node_replies *r,
			 struct fuse_entry_param *e);

/* fs_node_attr for a getattr, with the same waiting (note 7): 0 (answer
 * now), FS_NODE_PARKED (answered through r->attr), or a negative code. */
int fs_node_getattr_async(struct rfs_fs *fs, struct rfs_node *n,
			  fuse_req_t req, const struct fs_node_replies *r,
			  struct stat *st, double *timeout);

/* readlink of a real node into buf (size bytes, NUL-terminated).
 * Returns 0, -EINVAL (not a real node), -errno. */
int fs_node_readlink(struct rfs_fs *fs, struct rfs_node *n, char *buf,
		     size_t size);

/* ---- fs_hint.c -------------------------------------------------------- */

/* A lookup of name in directory node dir by thread pid was answered ENOENT.
 * Returns how long the kernel may keep that negative answer: 0 for a name
 * a program writes beside a virtual output (X.ovr, X.aux.xml, X.msk), so
 * that its create reaches the daemon as a lookup too (fs_hint.c note 1),
 * else fs->timeout.  When pid is trying to create or write that name, logs
 * what to use instead (RFS-E107), once per name per minute.  Cannot
 * fail. */
double fs_hint_lookup(struct rfs_fs *fs, struct rfs_node *dir,
		      const char *name, pid_t pid);

/* ---- fs_open.c -------------------------------------------------------- */

/* An open file: an fd of a real file or store object, or a text (a
 * control file, a world file) read with direct_io. */
struct fs_lazy;

struct fs_handle {
	int fd;                  /* -1: text */
	const struct rfs_node *node; /* the virtual node whose store object
	                              fd is (open while h is), else NULL */
	int keep_cache;          /* the kernel may keep its page cache */
	int direct_io;
	int backing_id;          /* > 0: served by passthrough through it */
	struct rfs_node *pt_node; /* counted in its pt_handles (note 3) */
	struct fs_lazy *lazy;    /* a lazy output's (fs_lazy.c), or NULL */
	size_t len;              /* of text */
	char text[];
};

struct fs_handle *fs_handle_text(size_t cap);  /* NULL: no memory */
/* Close h's fd and free it, nothing else (fs_open_release ends an open). */
void fs_handle_free(struct fs_handle *h);

/* The handle's open is over: its RELEASE (req), or a reply that failed
 * (req NULL: the kernel never saw the handle and sends no RELEASE).  The
 * node's backing id is closed with the last handle served through it,
 * which must be done from a request not yet answered (passthrough.h
 * rule 5); after a failed reply it stays registered, idle, for the next
 * open or fs_open_forget.  Frees h. */
void fs_open_release(fuse_req_t req, struct fs_handle *h);

/* Before a FORGET of n (req not answered yet): close n's backing id if no
 * handle uses it (left idle by a failed reply). */
void fs_open_forget(fuse_req_t req, struct rfs_node *n);

/* How fs.c answers an open: with h (rc 0), or the error rc. */
typedef void (*fs_open_reply_fn)(fuse_req_t req, struct fuse_file_info *fi,
				 int rc, struct fs_handle *h);

#define FS_OPEN_PARKED 1

/* Open real node n read-only for req (flags: the open's): 0 and *h, or
 * -ESTALE (the path names another file than n's now: the VFS looks it up
 * again and retries, note 4), -errno. */
int fs_open_real(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		 int flags, struct fs_handle **h);

/* ---- fs_lazy.c --------------------------------------------------------- */

/* Open n's output, not in the store, lazily (lazy.h) if it is a lazy
 * output whose description is at hand: 0 and *h (answer now),
 * FS_OPEN_PARKED (its sample statistics are computed first; answered
 * through reply, or EINTR already), FS_LAZY_WHOLE (not lazy: compute it
 * whole), or a negative code (answer it). */
#define FS_LAZY_WHOLE 2
int fs_lazy_open(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		 struct fuse_file_info *fi, fs_open_reply_fn reply,
		 struct fs_handle **h);

/* How fs.c answers a read: len bytes of buf (rc 0), or the error rc. */
typedef void (*fs_read_reply_fn)(fuse_req_t req, int rc, const void *buf,
				 size_t len);

/* Answer a read of lazy handle h, now or (blocks to compute) later, from
 * the committer's thread, through reply; always answered exactly once. */
void fs_lazy_read(struct rfs_fs *fs, struct fs_handle *h, fuse_req_t req,
		  size_t size, off_t off, fs_read_reply_fn reply);

/* What a lazy handle holds (fs_handle_free calls it); a handle that read
 * every block hands them to an assembly (fs_lazy.c note 7).  NULL ok. */
void fs_lazy_free(struct fs_lazy *lz);

/* Blocks of n's output stored (*done) of *total, if it is a lazy output
 * whose description is at hand: 0, or -ENODATA (not lazy), or a code.
 * done NULL: only whether it is lazy, and how many blocks (no lookup). */
int fs_lazy_blocks(struct rfs_fs *fs, struct rfs_node *n, long *done,
		   long *total);

/* Stop and wait for an assembly under way; before the store closes. */
void fs_lazy_stop(struct rfs_fs *fs);

/* Open virtual node n for req: 0 and *h (answer now), FS_OPEN_PARKED (the
 * open waits for a job and is answered through reply, or was answered
 * EINTR already), or a negative code (answer it). */
int fs_open_virtual(struct rfs_fs *fs, struct rfs_node *n, fuse_req_t req,
		    struct fuse_file_info *fi, fs_open_reply_fn reply,
		    struct fs_handle **h);

/* The source of virtual node n, opened once beneath the root (pinned): the
 * descriptor, or -ESTALE (the name means another file now),
 * -RFS_E_ESCAPE, -ENOENT, -errno. */
int fs_open_pin_source(struct rfs_fs *fs, struct rfs_node *n);

/* ---- fs_dir.c --------------------------------------------------------- */

struct fs_dir;

/* The listing of directory node n as thread pid sees it (fs_sidecar.c
 * note 2), read whole.  0 and *d, or -ENOTDIR, -ENOMEM, -errno. */
int fs_dir_open(struct rfs_fs *fs, struct rfs_node *n, pid_t pid,
		struct fs_dir **d);

/* Entries from offset off into buf (size bytes) as fuse_add_direntry
 * packs them.  Returns the bytes used. */
size_t fs_dir_fill(struct fs_dir *d, fuse_req_t req, off_t off, char *buf,
		   size_t size);
void fs_dir_free(struct fs_dir *d);

/* ---- fs_ctl.c --------------------------------------------------------- */

/* Open control file n for uid: a fresh text (the jobs uid may see, or the
 * counters).  0 and *h, or -ENOMEM. */
int fs_ctl_open(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
		struct fs_handle **h);

/* getxattr name of n for uid into buf (len bytes): the length, or
 * -ENODATA, -ERANGE, -errno, or a code of a command. */
ssize_t fs_ctl_getxattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
			const char *name, char *buf, size_t len);

/* listxattr of n into buf (len bytes): the length, or -errno. */
ssize_t fs_ctl_listxattr(struct rfs_fs *fs, struct rfs_node *n, char *buf,
			 size_t len);

#endif
