/* store.h - the cache store: LMDB index + immutable object files.
 *
 * Built as its own static library (cache/), which links only LMDB, xxHash
 * and the common core (err.c, log.c).  On-disk format, commit order and
 * crash behaviour are documented in cache/README.md; the design notes
 * open cache/store.c (an overview that says which file holds each).
 *
 * Rules the caller relies on:
 *  - One writer.  Only the store's own committer thread opens LMDB write
 *    transactions; rfs_store_commit() hands it work.  Every other call uses
 *    read transactions only, so lookups never wait for a commit.
 *  - Objects are immutable once committed; a key always names the same bytes.
 *  - Use an rfs_store in the process that opened it, never after fork()
 *    (it holds an MDB_env).  Worker processes never open the store: they are
 *    given a scratch directory path and write there.
 *  - All calls are thread safe.
 */
#ifndef RASTERFS_STORE_H
#define RASTERFS_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Bump when the key formula, object format or processing defaults change in
 * a way that changes the bytes a key names; old entries then never match. */
/* 3: outputs over RFS_LAZY_PIXELS carry a sample's approximate
 * statistics (lazy.h).  4: and internal overviews, each level the chain
 * computed at its resolution, and the sample is 2 x 2 windows of
 * 512 x 128 (lazy.h). */
#define RFS_FORMAT_VERSION 4

typedef struct rfs_store rfs_store;

/* 128-bit cache key: XXH3-128 of (format version, source identity,
 * canonical chain).  The full key material is also stored in the index entry
 * and compared on lookup, so a hash collision reads as a miss, never as
 * someone else's bytes. */
typedef struct rfs_key {
	unsigned char b[16];
} rfs_key;

#define RFS_KEY_HEX 33 /* 32 hex digits + NUL */

/* Identity of a source file: a changed source has a new identity. */
struct rfs_src_id {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
};

/* Never fails. */
void rfs_src_id_from_stat(struct rfs_src_id *id, const struct stat *st);

/* Compute the key of (src, canonical chain).  Pure; never fails. */
void rfs_key_make(rfs_key *out, const struct rfs_src_id *src,
		  const char *canonical);
/* Lower-case hex; never fails. */
void rfs_key_hex(const rfs_key *key, char out[RFS_KEY_HEX]);
/* Parse 32 hex digits.  Returns 0, or -EINVAL. */
int rfs_key_parse(const char *hex, rfs_key *out);

struct rfs_store_entry {
	uint64_t size;       /* bytes of the object file */
	uint64_t checksum;   /* XXH3-64 of the object file's bytes */
	int64_t created_ns;  /* commit time, CLOCK_REALTIME */
};

/* What a committed object was made from; stored in its index entry. */
struct rfs_store_meta {
	struct rfs_src_id src;
	const char *canonical; /* canonical chain */
	const char *source;    /* source path, for humans (rfs cache stats) */
	uint64_t size;         /* bytes of the file, as the worker wrote them */
	uint64_t checksum;     /* XXH3-64 of the file, computed by the worker */
};

/* How a process opens the store (rfs_store_open_opts).  Zeroed fields take
 * the defaults. */
#define RFS_STORE_RDONLY 1u /* read only: no repair, no committer, no
			     * scratch; for `rasterfs cache stats|verify` */
struct rfs_store_options {
	unsigned flags;          /* RFS_STORE_* */
	uint64_t limit;          /* bytes of objects kept; 0: no limit */
	size_t map_size;         /* initial LMDB map size; 0: 1 GiB.  The map
				  * grows by doubling when it fills. */
	const char *source_root; /* absolute source root of this mount: the
				  * entry records root/source so that gc and
				  * later commits can tell a changed source */
};

/* The default store directory: $XDG_CACHE_HOME/rasterfs when
 * XDG_CACHE_HOME is an absolute path, else $HOME/.cache/rasterfs (the
 * password database's home directory when HOME is unset or empty, /tmp when
 * it has none).  Returns 0 and *out (malloc'ed: the caller frees it), or
 * -ENOMEM, or -ENAMETOOLONG (longer than PATH_MAX). */
int rfs_store_default_dir(char **out);

/* Make dir and any missing parents, private (0700, as every directory of
 * the store is); directories that exist are left as they are.
 * rfs_store_open makes its directory itself; this is for a caller that
 * needs it first (to resolve it before daemonising).  Returns 0, or -ENOENT
 * (dir is ""), -ENOMEM, or mkdir's -errno. */
int rfs_store_make_dir(const char *dir);

/* Open (creating if needed) the store in dir: makes dir/objects,
 * dir/scratch and dir/index, opens the LMDB environment, repairs what a
 * crash may have left (cache/repair.c) and starts the committer thread.
 * Returns 0 and *out, or:
 *   -RFS_E_STORE_VERSION  dir holds a store of another format version
 *   -RFS_E_STORE_IO       LMDB could not be opened (message logged)
 *   -ENOTEMPTY            dir has objects/, scratch/ or index/ but no
 *                         FORMAT: someone else's directory
 *   -EBUSY                dir is open in this process already (or no
 *                         scratch/<pid>[.<n>] is free)
 *   -EINVAL               dir is NULL or "", or out is NULL
 *   -ENOMEM, -errno       a directory could not be made or opened */
int rfs_store_open(const char *dir, rfs_store **out);

/* rfs_store_open with options (NULL: defaults, as rfs_store_open).  With
 * RFS_STORE_RDONLY the store must exist (-ENOENT otherwise); nothing is
 * written or repaired and rfs_store_commit/gc/clear return -EROFS. */
int rfs_store_open_opts(const char *dir, const struct rfs_store_options *opt,
			rfs_store **out);

/* Finish queued commits, stop the committer, close LMDB, free. NULL ok. */
void rfs_store_close(rfs_store *st);

/* Look key up with a read transaction.  Returns 0 and *out (may be NULL) if
 * an entry exists whose key material matches (src, canonical) and its
 * object file has the entry's size, -ENOENT if not, -RFS_E_STORE_IO on an
 * LMDB error, -errno when the object file cannot be stat'ed. */
int rfs_store_lookup(rfs_store *st, const rfs_key *key,
		     const struct rfs_src_id *src, const char *canonical,
		     struct rfs_store_entry *out);

/* Open the object of a committed key read-only (O_CLOEXEC).  Returns the fd
 * (>= 0), or -ENOENT if there is no object file, -errno otherwise. */
int rfs_store_open_object(rfs_store *st, const rfs_key *key);

/* Path of key's object file (which may not exist); cut to len.  Never
 * fails. */
void rfs_store_object_path(rfs_store *st, const rfs_key *key, char *buf,
			   size_t len);

/* Make an empty private scratch directory for worker slot `slot` of this
 * process and write its path to buf.  An existing one is emptied first.
 * Scratch directories of this process live under one directory that it
 * holds an flock on, so another process opening the store knows they are
 * in use.  Returns 0 or -errno. */
int rfs_store_scratch_dir(rfs_store *st, unsigned slot, char *buf,
			  size_t len);

/* Remove everything inside a scratch directory (not the directory), never
 * following symlinks.  Goes on after an error; returns 0 or the first
 * -errno. */
int rfs_store_scratch_clean(const char *dir);

/* Remove the directory dir and all it holds, following no symbolic link
 * (the store's own helper, for temporary stores and run directories
 * outside a store).  A dir that does not exist is fine.  Returns 0 or a
 * negative errno. */
int rfs_store_remove_tree(const char *dir);

/* Called on the committer thread when a commit ends: rc is 0, or
 * -RFS_E_NOSPACE, -RFS_E_STORE_IO, -errno.  On failure the scratch file has
 * been removed and the index is unchanged.  A file whose size or XXH3-64
 * is not meta's fails with -RFS_E_STORE_IO, or -RFS_E_NOSPACE when it is
 * short and its filesystem has no room for the rest. */
typedef void (*rfs_store_commit_cb)(void *arg, int rc);

/* Queue the commit of a finished file (already written and fsynced by the
 * worker, inside a scratch directory of this store) as key's object.  The
 * committer checks its size and checksum against meta, makes it 0600,
 * renames it into objects/, fsyncs the directory, then writes the index
 * entry in one LMDB write transaction, then calls cb.  If key is
 * already committed (another mount made it) the file is dropped and cb gets
 * 0.  Returns 0 if queued (cb will be called exactly once), or -errno /
 * -RFS_E_SHUTDOWN if not (cb will not be called). */
int rfs_store_commit(rfs_store *st, const rfs_key *key,
		     const char *scratch_file,
		     const struct rfs_store_meta *meta,
		     rfs_store_commit_cb cb, void *arg);

/* Drop the entries of keys[0..n) and their objects, in the background:
 * one write transaction of the committer, after the commits queued
 * before it (so a commit's callback may ask for it).  What a lazy
 * output's blocks become once they are one object (fs_lazy.c note 7).  A
 * key without an entry is skipped; a reader with an object open keeps
 * reading it (evict.c note 8).  Returns 0 (queued), -EINVAL, -EROFS,
 * -ENOMEM or -RFS_E_SHUTDOWN; the committer logs its own failure. */
int rfs_store_drop(rfs_store *st, const rfs_key *keys, size_t n);

/* Number of index entries and the sum of their sizes.  Returns 0 or
 * -RFS_E_STORE_IO. */
int rfs_store_stats(rfs_store *st, uint64_t *objects, uint64_t *bytes);

/* The store's directory, as given to rfs_store_open().  Never fails. */
const char *rfs_store_dir(const rfs_store *st);

/* ---- size limit, eviction, maintenance --------------------------------
 *
 * Eviction: when a commit would take the indexed bytes over the limit, the
 * committer removes the least recently opened objects, in the same write
 * transaction, down to 90% of the limit (so it does not run on every
 * commit), then unlinks their files.  A reader that has an object open
 * keeps reading it: an unlinked file stays readable through open fds
 * (POSIX), and its blocks are freed at the last close.  Access times are
 * taken by rfs_store_open_object() into an in-memory table that the
 * committer writes in one transaction every few seconds (or every 512
 * distinct keys), never one LMDB write per read. */

/* The default limit for a store in dir: 10% of the size of the filesystem
 * holding it, at most 50 GiB.  Returns 0 or -errno (statvfs). */
int rfs_store_default_limit(const char *dir, uint64_t *out);

/* Parse a size: bytes, or a number with K, M, G or T (powers of 1024, an
 * optional trailing "B" or "iB"), e.g. "20G", "500M", "1048576".  Returns 0,
 * or -EINVAL (not a size, zero, or over 2^62). */
int rfs_store_parse_size(const char *s, uint64_t *out);

/* The limit this process enforces (0: none).  Never fails. */
uint64_t rfs_store_limit(const rfs_store *st);

/* The limit the most recent mount of this store recorded (0: none known);
 * what `rasterfs cache gc` evicts to by default.  Read transaction.
 * Returns 0, or -RFS_E_STORE_IO (logged). */
int rfs_store_recorded_limit(rfs_store *st, uint64_t *out);

/* Write the pending access times now (waits for the committer).  Returns
 * 0, -EROFS (read-only open), -RFS_E_SHUTDOWN (the store is closing),
 * -ENOMEM, or -RFS_E_NOSPACE / -RFS_E_STORE_IO when LMDB could not write
 * them (logged). */
int rfs_store_flush(rfs_store *st);

struct rfs_store_gc_report {
	/* from the repair done when this process opened the store */
	unsigned scratch_dirs, orphans, tmp_files, dangling;
	/* by rfs_store_gc */
	uint64_t changed, changed_bytes; /* entries of changed/removed sources */
	uint64_t evicted, evicted_bytes; /* entries evicted to the limit */
	uint64_t descriptions;           /* description records of changed
					    or removed sources dropped */
	uint64_t objects, bytes;         /* left in the store */
};

/* Garbage-collect on the committer: drop entries whose source (the
 * recorded absolute path) now has another identity, or was removed while
 * its directory still exists (a source on a missing directory, e.g. an
 * unmounted disk, is kept); then evict down to limit (0: no eviction).
 * Reads under way on a dropped object finish on the old bytes.  Returns 0,
 * -EROFS (read-only open), -RFS_E_SHUTDOWN (the store is closing),
 * -ENOMEM, or -RFS_E_NOSPACE / -RFS_E_STORE_IO (an LMDB error, or memory
 * ran out on the committer; logged). */
int rfs_store_gc(rfs_store *st, uint64_t limit,
		 struct rfs_store_gc_report *rep);

/* Remove every entry and object.  Refused with -EBUSY (and *pid set when
 * known) while another process has the store open: each opener holds a lock
 * on its scratch/<pid>/lock for as long as its store is open.  Runs under
 * store.lock LOCK_EX, so no process can open the store meanwhile.
 * Returns 0 and *removed (entries), -EBUSY, -EROFS (read-only open),
 * -RFS_E_SHUTDOWN (closing), -ENOMEM, -RFS_E_NOSPACE / -RFS_E_STORE_IO
 * (LMDB; logged), or the first -errno met removing the object files (the
 * index is empty by then; what is left is repaired at the next open). */
int rfs_store_clear(rfs_store *st, uint64_t *removed, long *pid);

/* ---- descriptions ------------------------------------------------------
 *
 * A description record says what a key's object will be before it
 * exists: its exact size and its packed layout (tiff.h; opaque here), so
 * `stat` of an output never computed needs no describer once it was
 * described (also after a remount).  Records live in their own database
 * ("described", keyed by the cache key; cache/README.md), are written by
 * the committer only, in batches (one write transaction for all the
 * records queued when it gets to them), and carry the key material, so a
 * hash collision reads as a miss.  A record without an object is normal;
 * the object, once committed, has the record's size (`rasterfs cache
 * verify` checks it).  gc drops the records of changed or removed
 * sources; clear drops them all; at most RFS_STORE_DESC_MAX are kept
 * (the oldest go first). */

#define RFS_STORE_DESC_MAX 1000000

struct rfs_store_desc {
	struct rfs_src_id src;
	const char *canonical;
	const char *source;      /* relative to the mount's source root */
	uint64_t stamp;          /* who described it (the caller's versions:
	                            a record of another stamp is a miss) */
	uint64_t size;           /* the output's exact size */
	const void *layout;      /* the packed layout, layout_len bytes */
	size_t layout_len;
};

/* Queue the record of key for the committer.  cb (may be NULL) is called
 * on the committer thread when it is written (rc 0) or not (-RFS_E_*).
 * Returns 0 if queued (cb will be called), or -EINVAL, -EROFS, -ENOMEM,
 * -ENAMETOOLONG, -RFS_E_SHUTDOWN (cb will not be called). */
int rfs_store_describe_put(rfs_store *st, const rfs_key *key,
			   const struct rfs_store_desc *d,
			   rfs_store_commit_cb cb, void *arg);

/* Key's record, with a read transaction, if it was made from (src,
 * canonical) with stamp: 0 and *size (and, when layout is not NULL, a
 * malloc'ed copy of the packed layout in *layout, *len bytes), or -ENOENT,
 * -ENOMEM, -RFS_E_STORE_IO. */
int rfs_store_describe_get(rfs_store *st, const rfs_key *key,
			   const struct rfs_src_id *src, const char *canonical,
			   uint64_t stamp, uint64_t *size, void **layout,
			   size_t *len);

/* Number of description records.  Returns 0 or -RFS_E_STORE_IO. */
int rfs_store_describe_count(rfs_store *st, uint64_t *n);

/* One index entry, for rfs_store_foreach. */
struct rfs_store_info {
	rfs_key key;
	uint64_t size, checksum;
	int64_t created_ns, atime_ns;
	struct rfs_src_id src;
	const char *canonical;   /* NUL-terminated copies, valid during fn */
	const char *source;      /* relative, as committed */
	const char *source_abs;  /* "" when the mount gave no source root */
};

/* Call fn for each entry within one read transaction; fn returns 0 to go
 * on.  Returns 0, fn's nonzero value, or -RFS_E_STORE_IO. */
int rfs_store_foreach(rfs_store *st,
		      int (*fn)(void *arg, const struct rfs_store_info *e),
		      void *arg);

/* Problems found by rfs_store_verify. */
enum rfs_store_problem {
	RFS_PROBLEM_RECORD,    /* an index record cannot be decoded */
	RFS_PROBLEM_MISSING,   /* the object file is missing / not regular */
	RFS_PROBLEM_SIZE,      /* object size differs from the entry */
	RFS_PROBLEM_CHECKSUM,  /* XXH3-64 of the bytes differs */
	RFS_PROBLEM_ORPHAN,    /* an object file no entry names (or a .tmp) */
	RFS_PROBLEM_SCRATCH,   /* a scratch dir no live process holds */
	RFS_PROBLEM_COUNTERS,  /* counters record disagrees with the entries */
	RFS_PROBLEM_UNKNOWN,   /* a file the store does not know */
	RFS_PROBLEM_DESCRIBED, /* a description record cannot be decoded, or
				  says another size than its object has */
};

struct rfs_store_verify_report {
	uint64_t entries, bytes_checked, problems;
	uint64_t descriptions;   /* description records checked */
};

/* Check every entry (reads each object and compares size and checksum),
 * then, under store.lock LOCK_EX (so no commit is half way), look for
 * object files no entry names and stale scratch dirs.  Changes nothing.
 * An entry that another process removed while it was being checked is not
 * a problem.  fn (may be NULL) gets each problem: what (a relative path or
 * key) and a sentence.  Returns 0 (problems are counted, not errors), or
 * -RFS_E_STORE_IO / -errno when the check itself could not run. */
int rfs_store_verify(rfs_store *st,
		     void (*fn)(void *arg, enum rfs_store_problem kind,
				const char *what, const char *detail),
		     void *arg, struct rfs_store_verify_report *rep);

/* ---- content hashes of sources (portable keys: pkey.h) -----------------
 *
 * The XXH3-128 of a source's bytes, remembered by its local identity, so
 * it is computed once per source version (cache/content.c note 12).
 * Written by the committer only; clear keeps them (they stay true), gc
 * drops those of changed or removed sources. */

/* The content hash recorded for src: 0 and out, or -ENOENT (none, or a
 * record of another version), -EINVAL, -RFS_E_STORE_IO (logged). */
int rfs_store_content_get(rfs_store *st, const struct rfs_src_id *src,
			  unsigned char out[16]);

/* Queue the record (src -> hash; source_abs, the absolute path of the
 * source, may be NULL: gc then keeps it) for the committer; fire and
 * forget (a lost record costs one more hash; rfs_store_flush() waits
 * for it).  Returns 0 if queued, or -EINVAL, -EROFS, -ENAMETOOLONG,
 * -ENOMEM, -RFS_E_SHUTDOWN. */
int rfs_store_content_put(rfs_store *st, const struct rfs_src_id *src,
			  const unsigned char hash[16], const char *source_abs);

/* Number of content records.  Returns 0 or -RFS_E_STORE_IO. */
int rfs_store_content_count(rfs_store *st, uint64_t *n);

#endif
