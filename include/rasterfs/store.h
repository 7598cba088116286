/* store.h - the cache store: LMDB index + immutable object files.
 *
 * Built as its own static library (cache/).  On-disk format, commit order
 * and crash behaviour are documented in cache/README.md and at the top of
 * cache/store.c.
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
#define RFS_FORMAT_VERSION 1

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

void rfs_src_id_from_stat(struct rfs_src_id *id, const struct stat *st);

/* Compute the key of (src, canonical chain).  Pure; never fails. */
void rfs_key_make(rfs_key *out, const struct rfs_src_id *src,
		  const char *canonical);
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
	uint64_t checksum;     /* XXH3-64 of the file, computed by the worker */
};

/* Open (creating if needed) the store in dir: makes dir/objects,
 * dir/scratch and dir/index, opens the LMDB environment, repairs what a
 * crash may have left (see store.c) and starts the committer thread.
 * Returns 0 and *out, or:
 *   -RFS_E_STORE_VERSION  dir holds a store of another format version
 *   -RFS_E_STORE_IO       LMDB could not be opened (message logged)
 *   -errno                a directory could not be made or opened */
int rfs_store_open(const char *dir, rfs_store **out);

/* Finish queued commits, stop the committer, close LMDB, free. NULL ok. */
void rfs_store_close(rfs_store *st);

/* Look key up with a read transaction.  Returns 0 and *out (may be NULL) if
 * an entry exists whose key material matches (src, canonical), -ENOENT if
 * not, -RFS_E_STORE_IO on an LMDB error. */
int rfs_store_lookup(rfs_store *st, const rfs_key *key,
		     const struct rfs_src_id *src, const char *canonical,
		     struct rfs_store_entry *out);

/* Open the object of a committed key read-only (O_CLOEXEC).  Returns the fd
 * (>= 0), or -ENOENT if there is no object file, -errno otherwise. */
int rfs_store_open_object(rfs_store *st, const rfs_key *key);

/* Path of key's object file (which may not exist). */
void rfs_store_object_path(rfs_store *st, const rfs_key *key, char *buf,
			   size_t len);

/* Make an empty private scratch directory for worker slot `slot` of this
 * process and write its path to buf.  An existing one is emptied first.
 * Scratch directories of this process live under one directory that it
 * holds an flock on, so another process opening the store knows they are
 * in use.  Returns 0 or -errno. */
int rfs_store_scratch_dir(rfs_store *st, unsigned slot, char *buf,
			  size_t len);

/* Remove everything inside a scratch directory (not the directory). */
int rfs_store_scratch_clean(const char *dir);

/* Called on the committer thread when a commit ends: rc is 0, or
 * -RFS_E_NOSPACE, -RFS_E_STORE_IO, -errno.  On failure the scratch file has
 * been removed and the index is unchanged. */
typedef void (*rfs_store_commit_cb)(void *arg, int rc);

/* Queue the commit of a finished file (already written and fsynced by the
 * worker, inside a scratch directory of this store) as key's object.  The
 * committer renames it into objects/, fsyncs the directory, then writes the
 * index entry in one LMDB write transaction, then calls cb.  If key is
 * already committed (another mount made it) the file is dropped and cb gets
 * 0.  Returns 0 if queued (cb will be called exactly once), or -errno /
 * -RFS_E_SHUTDOWN if not (cb will not be called). */
int rfs_store_commit(rfs_store *st, const rfs_key *key,
		     const char *scratch_file,
		     const struct rfs_store_meta *meta,
		     rfs_store_commit_cb cb, void *arg);

/* Number of index entries and the sum of their sizes.  Returns 0 or
 * -RFS_E_STORE_IO. */
int rfs_store_stats(rfs_store *st, uint64_t *objects, uint64_t *bytes);

/* The store's directory, as given to rfs_store_open(). */
const char *rfs_store_dir(const rfs_store *st);

#endif
