/* node.c - inode table: inode number <-> node <-> path. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/node.h"

#define NBUCKETS 4096

struct rfs_nodes {
	pthread_mutex_t lock;
	struct rfs_node root;
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
	t->root.path = strdup("");
	pthread_mutex_init(&t->root.lock, NULL);
	if (!t->root.path) {
		free(t);
		return NULL;
	}
	return t;
}

static void node_free(struct rfs_node *n)
{
	pthread_mutex_destroy(&n->lock);
	free(n->path);
	free(n->src);
	free(n->chain);
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
	free(t->root.path);
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

struct rfs_node *rfs_nodes_get(struct rfs_nodes *t, const char *path,
			       enum rfs_node_kind kind, const char *src,
			       const struct rfs_chain *chain)
{
	unsigned b = hash(path);
	struct rfs_node *n;

	if (path[0] == '\0')
		return &t->root;
	pthread_mutex_lock(&t->lock);
	for (n = t->buckets[b]; n; n = n->hnext)
		if (strcmp(n->path, path) == 0)
			break;
	/* A path that changed kind (a real file appeared where a virtual name
	 * was, say) gets a fresh node; the old one lives until forgotten. */
	if (n && n->kind == kind) {
		n->nlookup++;
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		goto out;
	n->kind = kind;
	n->nlookup = 1;
	n->path = strdup(path);
	pthread_mutex_init(&n->lock, NULL);
	if (kind == RFS_NODE_VIRTUAL) {
		n->src = strdup(src);
		n->chain = malloc(sizeof(*n->chain));
		if (n->chain)
			*n->chain = *chain;
	}
	if (!n->path || (kind == RFS_NODE_VIRTUAL && (!n->src || !n->chain))) {
		node_free(n);
		n = NULL;
		goto out;
	}
	n->ino = (fuse_ino_t)(uintptr_t)n;
	n->hnext = t->buckets[b];
	t->buckets[b] = n;
out:
	pthread_mutex_unlock(&t->lock);
	return n;
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
		if (*pp)
			*pp = n->hnext;
		pthread_mutex_unlock(&t->lock);
		node_free(n);
		return;
	}
	pthread_mutex_unlock(&t->lock);
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
