/* node.c - inode table: inode number <-> node <-> path. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/node.h"

#define NBUCKETS 16384 /* chains of a few nodes at 10^5 names */

struct rfs_nodes {
	pthread_mutex_t lock;
	struct rfs_node root;
	size_t count;
	struct rfs_node *buckets[NBUCKETS];
};

static unsigned hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % NBUCKETS;
}

struct rfs_nodes *rfs_nodes_new(void)
{
	struct rfs_nodes *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->root.ino = FUSE_ROOT_ID;
	t->root.kind = RFS_NODE_REAL;
	t->root.path = "";
	pthread_mutex_init(&t->root.lock, NULL);
	return t;
}

/* The node and its strings are one allocation (node_make). */
static void node_free(struct rfs_node *n)
{
	pthread_mutex_destroy(&n->lock);
	free(n);
}

void rfs_nodes_free(struct rfs_nodes *t)
{
	if (!t)
		return;
	for (unsigned b = 0; b < NBUCKETS; b++)
		while (t->buckets[b]) {
			struct rfs_node *n = t->buckets[b];
			t->buckets[b] = n->hnext;
			node_free(n);
		}
	pthread_mutex_destroy(&t->root.lock);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

struct rfs_node *rfs_nodes_find(struct rfs_nodes *t, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &t->root;
	return (struct rfs_node *)(uintptr_t)ino;
}

bool rfs_node_same_source(const struct rfs_node *n,
			  const struct rfs_src_id *id)
{
	return n->kind == RFS_NODE_VIRTUAL && n->id.dev == id->dev &&
	       n->id.ino == id->ino && n->id.size == id->size &&
	       n->id.mtime_ns == id->mtime_ns;
}

static bool node_matches(const struct rfs_node *n, const char *path,
			 enum rfs_node_kind kind,
			 const struct rfs_vnode_info *vi)
{
	if (n->kind != kind || strcmp(n->path, path) != 0)
		return false;
	if (kind == RFS_NODE_REAL)
		return n->id.dev == (vi ? vi->id.dev : 0) &&
		       n->id.ino == (vi ? vi->id.ino : 0);
	if (kind == RFS_NODE_VIEW)
		return strcmp(n->canonical, vi->canonical) == 0 &&
		       strcmp(n->src, vi->src) == 0;
	return kind != RFS_NODE_VIRTUAL ||
	       memcmp(n->key.b, vi->key.b, sizeof(vi->key.b)) == 0;
}

/* One allocation: the node, then path, src and canonical. */
static struct rfs_node *node_make(const char *path, enum rfs_node_kind kind,
				  const struct rfs_vnode_info *vi)
{
	size_t pl = strlen(path) + 1;
	bool named = kind == RFS_NODE_VIRTUAL || kind == RFS_NODE_VIEW;
	size_t sl = named ? strlen(vi->src) + 1 : 0;
	size_t cl = named ? strlen(vi->canonical) + 1 : 0;
	struct rfs_node *n = calloc(1, sizeof(*n) + pl + sl + cl);
	char *s;

	if (!n)
		return NULL;
	s = (char *)(n + 1);
	n->kind = kind;
	n->nlookup = 1;
	n->path = memcpy(s, path, pl);
	pthread_mutex_init(&n->lock, NULL);
	if (named) {
		n->src = memcpy(s + pl, vi->src, sl);
		n->canonical = memcpy(s + pl + sl, vi->canonical, cl);
		n->format = vi->format;
	}
	if (kind == RFS_NODE_VIRTUAL) {
		n->id = vi->id;
		n->key = vi->key;
		n->src_mode = vi->st->st_mode;
		n->src_uid = vi->st->st_uid;
		n->src_gid = vi->st->st_gid;
	} else if (kind == RFS_NODE_REAL && vi) {
		n->id.dev = vi->id.dev;
		n->id.ino = vi->id.ino;
	}
	n->ino = (fuse_ino_t)(uintptr_t)n;
	return n;
}

struct rfs_node *rfs_nodes_get(struct rfs_nodes *t, const char *path,
			       enum rfs_node_kind kind,
			       const struct rfs_vnode_info *vi)
{
	unsigned b = hash(path);
	struct rfs_node *n;

	assert(kind != RFS_NODE_VIRTUAL || (vi && vi->st));
	assert(kind != RFS_NODE_VIEW || vi);
	if (path[0] == '\0')
		return &t->root;
	pthread_mutex_lock(&t->lock);
	/* Another kind (a real file appeared where a virtual name was) or
	 * another key (the source changed) gets a fresh node; the old one
	 * lives until forgotten. */
	for (n = t->buckets[b]; n; n = n->hnext)
		if (node_matches(n, path, kind, vi))
			break;
	if (n) {
		n->nlookup++;
		goto out;
	}
	n = node_make(path, kind, vi);
	if (!n)
		goto out;
	n->hnext = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
out:
	pthread_mutex_unlock(&t->lock);
	return n;
}

void rfs_nodes_hold(struct rfs_nodes *t, struct rfs_node *n)
{
	if (n == &t->root || n->kind == RFS_NODE_CTL_DIR ||
	    n->kind == RFS_NODE_CTL_FILE)
		return;
	pthread_mutex_lock(&t->lock);
	assert(n->nlookup > 0);
	n->nlookup++;
	pthread_mutex_unlock(&t->lock);
}

void rfs_nodes_forget(struct rfs_nodes *t, fuse_ino_t ino, uint64_t nlookup)
{
	struct rfs_node *n = rfs_nodes_find(t, ino);

	if (n == &t->root || n->kind == RFS_NODE_CTL_DIR ||
	    n->kind == RFS_NODE_CTL_FILE)
		return;
	pthread_mutex_lock(&t->lock);
	assert(n->nlookup >= nlookup);
	n->nlookup -= nlookup;
	if (n->nlookup == 0) {
		struct rfs_node **pp = &t->buckets[hash(n->path)];
		while (*pp && *pp != n)
			pp = &(*pp)->hnext;
		if (*pp) {
			*pp = n->hnext;
			t->count--;
		}
		pthread_mutex_unlock(&t->lock);
		node_free(n);
		return;
	}
	pthread_mutex_unlock(&t->lock);
}

size_t rfs_nodes_count(struct rfs_nodes *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

void rfs_nodes_each(struct rfs_nodes *t,
		    void (*fn)(const struct rfs_node *n, void *arg), void *arg)
{
	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < NBUCKETS; b++)
		for (struct rfs_node *n = t->buckets[b]; n; n = n->hnext)
			fn(n, arg);
	pthread_mutex_unlock(&t->lock);
}
