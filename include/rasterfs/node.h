/* node.h - the FUSE layer's inode table.
 *
 * Every name the kernel has looked up has a node, found by its inode number
 * (the node's address, as libfuse's passthrough examples do) or by its path
 * below the source root.  The kernel's lookup count decides a node's life:
 * rfs_nodes_get() adds one, rfs_nodes_forget() takes them away and frees the
 * node at zero.  The kernel sends no request for an inode it has forgotten,
 * so a node pointer stays valid while a request on it runs.  Thread safe.
 */
#ifndef RASTERFS_NODE_H
#define RASTERFS_NODE_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "rasterfs/chain.h"
#include "rasterfs/store.h"

enum rfs_node_kind {
	RFS_NODE_REAL,     /* a file, directory or symlink of the source tree */
	RFS_NODE_VIRTUAL,  /* <source>@<chain> */
	RFS_NODE_CTL_DIR,  /* MOUNT/.rasterfs */
	RFS_NODE_CTL_FILE, /* MOUNT/.rasterfs/<name> */
};

struct rfs_node {
	fuse_ino_t ino;
	enum rfs_node_kind kind;
	uint64_t nlookup;
	char *path;              /* below the source root; "" for the root */
	/* RFS_NODE_VIRTUAL */
	char *src;               /* the source's path below the root */
	struct rfs_chain *chain;
	pthread_mutex_t lock;    /* guards the fields below */
	bool opened;             /* an object of last_key was opened before */
	rfs_key last_key;        /* so its page cache may be kept */
	bool key_changed;        /* opened with two keys: direct_io (fs.c) */
	struct rfs_node *hnext;  /* path table chain */
};

struct rfs_nodes;

struct rfs_nodes *rfs_nodes_new(void);
void rfs_nodes_free(struct rfs_nodes *t);

/* The node for ino, or NULL if the kernel sent an unknown one. */
struct rfs_node *rfs_nodes_find(struct rfs_nodes *t, fuse_ino_t ino);

/* Find or make the node of path and count one lookup.  For a new virtual
 * node, src and chain are copied.  Returns NULL when out of memory. */
struct rfs_node *rfs_nodes_get(struct rfs_nodes *t, const char *path,
			       enum rfs_node_kind kind, const char *src,
			       const struct rfs_chain *chain);

/* Take n lookups off ino; the node is freed at zero (except the root and
 * the control nodes, which live as long as the table). */
void rfs_nodes_forget(struct rfs_nodes *t, fuse_ino_t ino, uint64_t n);

/* Call fn on every node of the path table (not the root), holding the
 * table's lock: fn must not call rfs_nodes_* or block. */
void rfs_nodes_each(struct rfs_nodes *t,
		    void (*fn)(const struct rfs_node *n, void *arg), void *arg);

#endif
