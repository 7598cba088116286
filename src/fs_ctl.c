/* fs_ctl.c - the .rasterfs/ control files and the extended attributes
 * (a virtual file's description and the warm and cancel commands; a view
 * directory's chain and source directory). */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_int.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/step.h"

/* ---- control files ---------------------------------------------------- */

/* stats and jobs are made at open for the reader; log (the ring, for the
 * reader's uid) and steps (the step table's text) too.  Each is read with
 * direct_io, so its size 0 in stat does not cut it short. */
int fs_ctl_open(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
		struct fs_handle **out)
{
	struct fs_handle *h;
	size_t cap = 4096;
	char *text = NULL;
	size_t text_len = 0;
	int rc;

	if (n == &fs->ctl_file[RFS_CTL_JOBS]) {
		/* a user sees the jobs they asked for (jobs.h) */
		if ((rc = rfs_pool_jobs_json(fs->pool, uid, &text,
					     &text_len)) < 0)
			return rc;
		cap = text_len + 1;
	} else if (n == &fs->ctl_file[RFS_CTL_LOG]) {
		/* a user reads the lines about their own requests and
		 * everyone's; root and the mount's owner every line (log.h) */
		if ((rc = rfs_log_ring_text(uid, uid == 0 || uid == getuid(),
					    &text, &text_len)) < 0)
			return rc;
		cap = text_len + 1;
	} else if (n == &fs->ctl_file[RFS_CTL_STEPS]) {
		/* the text of `rasterfs steps` (step.h) */
		if ((rc = rfs_steps_text(&text, &text_len)) < 0)
			return rc;
		cap = text_len + 1;
	}
	if (!(h = fs_handle_text(cap))) {
		free(text);
		return -ENOMEM;
	}
	if (text) {
		memcpy(h->text, text, text_len);
		h->len = text_len;
		free(text);
	} else {
		atomic_store(&fs->stats.nodes, rfs_nodes_count(fs->nodes));
		int len = rfs_stats_json(&fs->stats, fs->store,
					 rfs_pool_workers(fs->pool), h->text,
					 cap);
		h->len = len < 0 ? 0 : (size_t)len;
	}
	*out = h;
	return 0;
}

/* ---- extended attributes ---------------------------------------------- */

/* A virtual file describes itself; reading these never starts a job.
 * Two more names are commands, never listed (getfattr -d must not run
 * them): user.rasterfs.warm queues the output's job with no reader
 * (answers "done", "queued", or "failed RFS-Ennn message"), and
 * user.rasterfs.cancel cancels its job (answers "cancelled" or "none").
 * user.rasterfs.run, not listed either, says how `rasterfs run` computes
 * the output elsewhere: the mount's shared tier and options, then its
 * source root, source and chain, one "name=value" line each (fs.h). */
static const char *const vattrs[] = {
	"user.rasterfs.chain", "user.rasterfs.key", "user.rasterfs.state",
	"user.rasterfs.source", "user.rasterfs.progress",
	"user.rasterfs.error", "user.rasterfs.blocks",
};

/* getxattr user.rasterfs.warm: the `rasterfs warm` command. */
static int warm_xattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
		      char *buf, size_t len)
{
	char msg[RFS_MSG_MAX] = "";
	int rc = fs_open_pin_source(fs, n);
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
	/* a lazy output's blocks are jobs of their own (lazy.h) */
	int pieces = rfs_pool_cancel_pieces(fs->pool, &n->id, n->canonical,
					    uid);

	if (pieces > 0)
		rc = 0;
	else if (pieces == -EPERM && rc == -ENOENT)
		rc = -EPERM;
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

	/* fs_node.c note 4: the name means another file now (every
	 * attribute describes, or acts on, the node's key). */
	if ((rc = fs_node_source_check(fs, n, NULL)) < 0)
		return rc;
	if (strcmp(name, "user.rasterfs.warm") == 0) {
		w = warm_xattr(fs, n, uid, buf, len);
	} else if (strcmp(name, "user.rasterfs.cancel") == 0) {
		w = cancel_xattr(fs, n, uid, buf, len);
	} else if (strcmp(name, "user.rasterfs.progress") == 0) {
		double progress = 0;
		long d, t;
		if (rfs_store_lookup(fs->store, key, &n->id, n->canonical,
				     NULL) == 0)
			progress = 1;
		else if (rfs_pool_job_state(fs->pool, key, NULL,
					    &progress) < 0 &&
			 fs_lazy_blocks(fs, n, &d, &t) == 0 && t > 0)
			progress = (double)d / (double)t; /* lazy.h */
		w = snprintf(buf, len, "%.0f", 100 * progress);
	} else if (strcmp(name, "user.rasterfs.blocks") == 0) {
		/* a lazy output's blocks: stored of all (lazy.h) */
		long d, t;
		if ((rc = fs_lazy_blocks(fs, n, &d, &t)) < 0)
			return rc;
		w = snprintf(buf, len, "%ld/%ld", d, t);
	} else if (strcmp(name, "user.rasterfs.error") == 0) {
		char msg[RFS_MSG_MAX];
		int code;
		if (rfs_pool_last_error(fs->pool, key, &code, msg,
					sizeof(msg), NULL) < 0)
			return -ENODATA;
		w = snprintf(buf, len, "%s %s", rfs_err_name(code), msg);
	} else if (strcmp(name, "user.rasterfs.run") == 0) {
		w = snprintf(buf, len, "%sroot=%s\nsource=%s\nchain=%s\n",
			     fs->run ? fs->run : "", fs->root.path, n->src,
			     n->canonical);
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
		long d, t;
		if (rfs_store_lookup(fs->store, key, &n->id, n->canonical,
				     NULL) == 0)
			state = "done";
		else if (rfs_pool_job_state(fs->pool, key, &state, NULL) < 0 &&
			 fs_lazy_blocks(fs, n, &d, &t) == 0 && d > 0)
			state = "partial"; /* some blocks stored (lazy.h) */
		w = snprintf(buf, len, "%s", state);
	} else {
		return -ENODATA;
	}
	if (w < 0)
		return w;
	return (size_t)w >= len ? -ERANGE : w;
}

/* A view directory says what it is: its chain and the directory it
 * mirrors (what a named view stands for). */
static const char *const view_attrs[] = {
	"user.rasterfs.chain", "user.rasterfs.source",
};

static ssize_t view_xattr(struct rfs_node *n, const char *name, char *buf,
			  size_t len)
{
	int w;

	if (strcmp(name, view_attrs[0]) == 0)
		w = snprintf(buf, len, "%s", n->canonical);
	else if (strcmp(name, view_attrs[1]) == 0)
		w = snprintf(buf, len, "%s", n->src[0] ? n->src : ".");
	else
		return -ENODATA;
	return (size_t)w >= len ? -ERANGE : w;
}

ssize_t fs_ctl_getxattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
			const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t l;

	switch (n->kind) {
	case RFS_NODE_VIRTUAL:
		return virtual_xattr(fs, n, uid, name, buf, len);
	case RFS_NODE_VIEW:
		return view_xattr(n, name, buf, len);
	case RFS_NODE_REAL:
		snprintf(path, sizeof(path), "%s/%s", fs->root.path, n->path);
		l = lgetxattr(path, name, buf, len);
		return l < 0 ? -errno : l;
	default:
		return -ENODATA;
	}
}

ssize_t fs_ctl_listxattr(struct rfs_fs *fs, struct rfs_node *n, char *buf,
			 size_t len)
{
	char path[PATH_MAX];
	size_t used = 0;
	ssize_t l;

	switch (n->kind) {
	case RFS_NODE_VIRTUAL:
		for (size_t i = 0; i < sizeof(vattrs) / sizeof(*vattrs); i++) {
			/* Listed only when there is one: getfattr -d gets
			 * every name listed, and would print "No such
			 * attribute" for an output that never failed. */
			if (strcmp(vattrs[i], "user.rasterfs.error") == 0 &&
			    rfs_pool_last_error(fs->pool, &n->key, NULL, NULL,
						0, NULL) < 0)
				continue;
			/* only a lazy output has blocks (lazy.h); whether
			 * it is one needs no count of its stored blocks */
			long t;
			if (strcmp(vattrs[i], "user.rasterfs.blocks") == 0 &&
			    fs_lazy_blocks(fs, n, NULL, &t) < 0)
				continue;
			size_t vl = strlen(vattrs[i]) + 1;
			if (used + vl > len)
				return -ERANGE;
			memcpy(buf + used, vattrs[i], vl);
			used += vl;
		}
		return (ssize_t)used;
	case RFS_NODE_VIEW:
		for (size_t i = 0; i < 2; i++) {
			size_t vl = strlen(view_attrs[i]) + 1;
			if (used + vl > len)
				return -ERANGE;
			memcpy(buf + used, view_attrs[i], vl);
			used += vl;
		}
		return (ssize_t)used;
	case RFS_NODE_REAL:
		snprintf(path, sizeof(path), "%s/%s", fs->root.path, n->path);
		l = llistxattr(path, buf, len);
		return l < 0 ? -errno : l;
	default:
		return 0;
	}
}
