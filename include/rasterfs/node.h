/* node.h - the FUSE layer's inode table.
 *
 * Every name the kernel has looked up has a node, found by its inode number
 * (the node's address, as libfuse's passthrough examples do) or by its path
 * below the source root.  The kernel's lookup count decides a node's life:
 * rfs_nodes_get() adds one, rfs_nodes_forget() takes them away and frees the
 * node at zero.  The kernel sends no request for an inode it has forgotten,
 * so a node pointer stays valid while a request on it runs.  Thread safe.
 *
 * A virtual node stands for one key: its path, its source's identity when
 * it was made and its canonical chain, all fixed for its life
 * (fs_node.c note 2).  Several nodes may share a path (a source that changed, a name that
 * became a real file): each lives until the kernel forgets it.  A node
 * keeps only what serving it needs (a few hundred bytes, one allocation):
 * not the parsed chain, which is re-parsed by whoever needs the steps.
 */
#ifndef RASTERFS_NODE_H
#define RASTERFS_NODE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rasterfs/chain.h"
#include "rasterfs/store.h"

enum rfs_node_kind {
	RFS_NODE_REAL,     /* a file, directory or symlink of the source tree */
	RFS_NODE_VIRTUAL,  /* <source>@<chain> */
	RFS_NODE_VIEW,     /* a view directory (resolve.h) */
	RFS_NODE_CTL_DIR,  /* MOUNT/.rasterfs */
	RFS_NODE_CTL_FILE, /* MOUNT/.rasterfs/<name> */
};

/* What a virtual node is made of (rfs_nodes_get copies it).  A view node
 * is made of src (the directory it mirrors), canonical and format only. */
struct rfs_vnode_info {
	const char *src;         /* the source's path below the root */
	const char *canonical;   /* canonical chain */
	enum rfs_format format;
	struct rfs_src_id id;    /* the source's identity at lookup */
	rfs_key key;             /* rfs_key_make(id, canonical) */
	const struct stat *st;   /* the source's stat at lookup (owner, mode) */
};

struct rfs_node {
	fuse_ino_t ino;
	enum rfs_node_kind kind;
	uint64_t nlookup;
	const char *path;        /* below the source root; "" for the root */
	struct rfs_node *hnext;  /* path table chain */
	/* RFS_NODE_VIRTUAL (and src, canonical, format of RFS_NODE_VIEW),
	 * fixed for the node's life */
	const char *src;
	const char *canonical;
	enum rfs_format format;
	struct rfs_src_id id;    /* REAL: dev and ino of a regular file (the
				    rest 0), fixed too; 0 for the others */
	rfs_key key;
	pthread_mutex_t lock;    /* guards the fields below */
	mode_t src_mode;         /* the source's, as last seen with id */
	uid_t src_uid;
	gid_t src_gid;
	bool sized;              /* the output's size is known: sticky */
	bool described;          /* ... from its description, before it was
	                            computed (describer.h) */
	uint64_t size;
	int64_t mtime_ns;        /* unused: an output's mtime is its
	                            source's (fs_node.c note 6) */
	/* how the kernel serves the node's open files (fs_open.c note 3) */
	int pt_id;               /* passthrough backing id, 0: none */
	unsigned pt_handles;     /* open handles served through pt_id */
	bool pt_refused;         /* registering failed: cached for life */
	bool seen;               /* REAL: the last open's file, for keep_cache */
	int64_t seen_size, seen_mtime_ns, seen_ctime_ns;
};

struct rfs_nodes;

struct rfs_nodes *rfs_nodes_new(void);
void rfs_nodes_free(struct rfs_nodes *t);

/* The node for ino (FUSE_ROOT_ID: the root).  ino must be one this table
 * gave out and the kernel has not forgotten (it sends no other): the node
 * is the inode number's own address, so it is not looked up, and never
 * NULL. */
struct rfs_node *rfs_nodes_find(struct rfs_nodes *t, fuse_ino_t ino);

/* Find or make the node of path and count one lookup.  A real node is
 * found by path, kind and vi->id's dev and ino (vi NULL: 0; a regular file
 * replaced by another gets a new node, fs_open.c note 4); a virtual one by
 * path and key; a view by path and canonical chain (vi, required for
 * RFS_NODE_VIRTUAL and RFS_NODE_VIEW, is copied into a new node).  Returns
 * NULL when out of memory. */
struct rfs_node *rfs_nodes_get(struct rfs_nodes *t, const char *path,
			       enum rfs_node_kind kind,
			       const struct rfs_vnode_info *vi);

/* Count one more lookup of n, held by the caller (a request waiting for
 * a describe), which gives it back with rfs_nodes_forget(t, n->ino, 1).
 * n must be held already (the kernel's, or the caller's). */
void rfs_nodes_hold(struct rfs_nodes *t, struct rfs_node *n);

/* Take n lookups off ino; the node is freed at zero (except the root and
 * the control nodes, which live as long as the table). */
void rfs_nodes_forget(struct rfs_nodes *t, fuse_ino_t ino, uint64_t n);

/* Number of nodes in the path table. */
size_t rfs_nodes_count(struct rfs_nodes *t);

/* Call fn on every node of the path table (not the root), holding the
 * table's lock: fn must not call rfs_nodes_* or block. */
void rfs_nodes_each(struct rfs_nodes *t,
		    void (*fn)(const struct rfs_node *n, void *arg), void *arg);

/* Is id the identity of n's key?  (Real nodes: never.) */
bool rfs_node_same_source(const struct rfs_node *n,
			  const struct rfs_src_id *id);

#endif
