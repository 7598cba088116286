/* worker.c - a worker process: receive a job, run it, report.
 *
 * Limits (pool.h): every step's output grid is worked out from the
 * source's header by the step table's describe (describe.h) before any
 * pixel is computed, and a job with an output over max_pixels fails at
 * once with RFS_E_TOO_BIG.  worker_mem caps the address space
 * (RLIMIT_AS) above the idle worker's own footprint; a failed allocation
 * that GDAL reports is RFS_E_NOMEM (ops.c), and one that ends the process
 * by SIGSEGV/SIGABRT/SIGBUS near the cap is reported as RFS_E_NOMEM by the
 * handler here before the process dies.  A SIGKILL (the kernel's OOM
 * killer, or anyone) cannot be told apart from other kills: the daemon
 * reports it as a crash, RFS_E_CRASH.
 *
 * Confinement (confine.h, vsi.h): once GDAL and PROJ are set up and warmed
 * up, the worker installs the GDAL file systems it reads through (the
 * source tree beneath its own root descriptor, pinned descriptors,
 * refused network paths), moves into its scratch directory, and confines
 * itself for good (privileges dropped, Landlock, seccomp) before its
 * first job.  A worker that cannot confine itself runs no job: it answers
 * each with RFS_E_INTERNAL (exiting would only make the daemon start
 * another, in a loop).
 *
 * A job's source arrives as a descriptor (the daemon opened it, pool.c
 * note 10) and GDAL reads it as RFS_VSI_TREE + its path below the root, so
 * that its sidecars and relative references resolve in the tree.  Its
 * identity (dev, ino, size, mtime) is compared with the one the key was
 * made from at the start and at the end of the job: a source that changed
 * fails the job with RFS_E_SOURCE_CHANGED.  A job that made GDAL ask for
 * something refused (vsi.h) fails with RFS_E_FORBIDDEN, naming it.
 *
 * Kept handles.  The pieces of one lazy output (lazy.h) come in a row:
 * the sample statistics at the first open, then the blocks its reader
 * reads.  A worker keeps, after a piece job that succeeded, its
 * description and its window handle (window.h, with its warps' VRTs:
 * window.c note 8) with the job's source descriptor, which the handle's
 * GDAL dataset reads (vsi.c pins a descriptor, it does not reopen the
 * name).  The next piece job uses them only if it is of the same chain on
 * the same source name with the same identity (dev, ino, size, mtime: the
 * key's), which it has checked on its own descriptor first: a source
 * replaced or changed since is another identity, so the kept handle is
 * closed and a new one opened; it never reads the old file for a new key.
 * Any other job, a failure, or RFS_KEPT_IDLE seconds without a job drop
 * it (a kept descriptor would hold a deleted source's space).  Measured
 * on a 20000² proj,bilinear: a block after the sample saves its describe,
 * its window open and its warp's VRTs, about 4 ms of 13.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cpl_conv.h>
#include <cpl_string.h>
#include <ogr_srs_api.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/chain.h"
#include "rasterfs/confine.h"
#include "rasterfs/describe.h"
#include "rasterfs/err.h"
#include "rasterfs/lazy.h"
#include "rasterfs/lazy_work.h"
#include "rasterfs/log.h"
#include "rasterfs/ops.h"
#include "rasterfs/output.h"
#include "rasterfs/tiff.h"
#include "rasterfs/vsi.h"
#include "rasterfs/wire.h"
#include "rasterfs/worker.h"

/* Kept handles (above): seconds without a job before they are dropped. */
#define RFS_KEPT_IDLE 10

static struct {
	int fd;                       /* the source descriptor; -1: none */
	struct rfs_src_id src;        /* its identity */
	char source_rel[PATH_MAX];
	char chain[RFS_CHAIN_TEXT_MAX];
	struct rfs_output out;        /* the description */
	struct rfs_window *w;         /* NULL: none yet */
} kept = { .fd = -1 };

static void kept_drop(void)
{
	rfs_window_close(kept.w);
	kept.w = NULL;
	rfs_output_clear(&kept.out);
	memset(&kept.out, 0, sizeof(kept.out));
	if (kept.fd >= 0)
		close(kept.fd);
	kept.fd = -1;
}

/* Is m (its source checked already) a piece of the kept output? */
static int kept_matches(const struct rfs_msg *m, const char *chain)
{
	return kept.fd >= 0 && m->prefix_fd < 0 &&
	       kept.src.dev == m->src.dev && kept.src.ino == m->src.ino &&
	       kept.src.size == m->src.size &&
	       kept.src.mtime_ns == m->src.mtime_ns &&
	       !strcmp(kept.source_rel, m->source_rel) &&
	       !strcmp(kept.chain, chain);
}

/* The name GDAL reads a kept prefix object by (vsi.h). */
#define PREFIX_NAME RFS_VSI_PIN "prefix.tif"

struct job_ctx {
	int fd;
	uint64_t id;
	double last_sent;
	struct timespec last_time;
	int cancelled;
	int checked;        /* open files looked at once (vsi.h) */
};

/* For the fatal-signal handler: the job running and the socket. */
static volatile sig_atomic_t cur_fd = -1;
static volatile uint64_t cur_job;
static uint64_t mem_cap; /* RLIMIT_AS set, bytes; 0: none */
static CPLErrorHandler log_handler; /* the logger's (log.h) */
static char confine_error[RFS_MSG_MAX]; /* why this worker runs no job */

/* Address space in use, from /proc/self/statm (async-signal-safe: open,
 * read, close only).  0 if unknown. */
static uint64_t vm_bytes(void)
{
	char buf[64];
	uint64_t pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		pages = pages * 10 + (uint64_t)(buf[i] - '0');
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A crash with the address space nearly at the cap is an allocation that
 * failed where nobody checked (C++ new, abort in a library): say so, then
 * die as the signal says. */
static void fatal_signal(int sig)
{
	static const char m[] = "out of memory: worker_mem reached";

	if (cur_fd >= 0 && mem_cap && vm_bytes() + (64u << 20) >= mem_cap)
		rfs_wire_send_failed(cur_fd, cur_job, -RFS_E_NOMEM,
				     RFS_WIRE_FAILED_EXIT, m);
	signal(sig, SIG_DFL);
	raise(sig);
}

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* GDAL progress callback: report at most once per percent or per 0.2 s,
 * and look for a CANCEL from the daemon without blocking. */
static int CPL_STDCALL job_progress(double frac, const char *msg, void *arg)
{
	struct job_ctx *c = arg;
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	(void)msg;

	while (poll(&p, 1, 0) > 0) {
		struct rfs_msg m;
		int rc = rfs_wire_recv(c->fd, &m);
		if (rc == -EPIPE)
			_exit(1); /* the daemon is gone; nobody wants this */
		if (rc == 0 && m.type == RFS_MSG_CANCEL && m.job_id == c->id)
			c->cancelled = 1;
		if (rc < 0)
			break;
		rfs_wire_close_fds(&m); /* a JOB now would be a daemon bug */
	}
	if (c->cancelled)
		return FALSE;
	if (frac - c->last_sent >= 0.01 || since(&c->last_time) >= 0.2 ||
	    !c->checked) {
		/* what the source refers to is open now (vsi.h) */
		rfs_vsi_check_open_files();
		c->checked = 1;
		rfs_wire_send_progress(c->fd, c->id, frac);
		c->last_sent = frac;
		clock_gettime(CLOCK_MONOTONIC, &c->last_time);
	}
	return TRUE;
}

/* Refuse an output that cannot fit in what is left of the scratch's
 * disk (out: its description, output.h; max_pixels was held to by
 * rfs_output_describe): an uncompressed tiled GeoTIFF of the last step is
 * written (the output, or the file a COG or PNG is made from), whole
 * 256 x 256 tiles of every band; only a COG of the source itself may be
 * smaller.  A lower bound, so nothing that could fit is refused; it
 * catches a full disk before libtiff meets it.  Returns 0, or
 * -RFS_E_NOSPACE with msg set. */
static int check_space(const struct rfs_output *o,
		       const struct rfs_chain *chain, char *msg,
		       size_t msglen)
{
	const struct rfs_grid *out = &o->grid;
	struct statvfs sv;
	uint64_t need = 0;

	if (out->width <= 0)
		return 0;
	for (int b = 0; b < out->nbands; b++) {
		int sz = GDALGetDataTypeSizeBytes(out->bands[b].type);
		need += (uint64_t)(sz > 0 ? sz : 1);
	}
	need *= (uint64_t)(out->width + 255) / 256 *
		(uint64_t)(out->height + 255) / 256 * 65536;
	if (chain->format == RFS_FMT_COG && chain->nsteps == 0)
		need = 0;
	if (need && statvfs(".", &sv) == 0 &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < need) {
		snprintf(msg, msglen, "the output needs at least %llu bytes; "
			 "the disk of the cache store has %llu left",
			 (unsigned long long)need,
			 (unsigned long long)sv.f_bavail * sv.f_frsize);
		return -RFS_E_NOSPACE;
	}
	return 0;
}

/* Is the pinned source still the file the key was made from?  0, or
 * -RFS_E_SOURCE_CHANGED with msg set. */
static int same_source(int fd, const struct rfs_src_id *want, const char *rel,
		       char *msg, size_t msglen)
{
	struct stat st;
	struct rfs_src_id now;

	if (fstat(fd, &st) < 0) {
		snprintf(msg, msglen, "%s: cannot stat the source: %s", rel,
			 strerror(errno));
		return -RFS_E_SOURCE_CHANGED;
	}
	rfs_src_id_from_stat(&now, &st);
	if (now.dev == want->dev && now.ino == want->ino &&
	    now.size == want->size && now.mtime_ns == want->mtime_ns)
		return 0;
	snprintf(msg, msglen, "%s changed while its job ran (size %llu -> "
		 "%llu bytes, mtime %lld -> %lld ns); its new version is a "
		 "new output", rel, (unsigned long long)want->size,
		 (unsigned long long)now.size, (long long)want->mtime_ns,
		 (long long)now.mtime_ns);
	return -RFS_E_SOURCE_CHANGED;
}

/* The output described from the pinned source (output.h), the whole
 * chain: the same description the describers give, whatever the job
 * starts from.  Returns 0 with *have set when it could be described,
 * -RFS_E_TOO_BIG (msg set); any other failure is left for the job itself
 * to fail on, with its own message (*have 0). */
static int describe_job(const char *name, const char *rel,
			const struct rfs_chain *chain, uint64_t max_pixels,
			struct rfs_output *o, int *have, char *msg,
			size_t msglen)
{
	char why[RFS_MSG_MAX];
	int rc = rfs_output_describe(name, rel, chain, max_pixels, o, why,
				     sizeof(why));

	*have = rc == 0;
	if (rc == -RFS_E_TOO_BIG) {
		snprintf(msg, msglen, "%s", why);
		return rc;
	}
	if (rc)
		rfs_log(LOG_DEBUG, "describe: %s (left to the job)", why);
	return 0;
}

/* A piece of a lazy output (lazy.h): a block or the sample statistics,
 * into out_name, with its size and checksum in *res.  o: the output as
 * described (NULL: it could not be, so it is no lazy output). */
static int run_piece(const char *name, const struct rfs_chain *chain,
		     const struct rfs_output *o, enum rfs_lazy_part part,
		     int level, int bx, int by, struct rfs_window **keep,
		     const char *out_name, struct rfs_ops_result *res,
		     char *msg, size_t msglen)
{
	const struct rfs_tiff_layout *l = o && o->has_layout ? &o->layout :
					  NULL;
	struct rfs_tiff_stats *st;
	int rc;

	if (!l || chain->format != RFS_FMT_GTIFF ||
	    !rfs_lazy_is(l->level[0].width, l->level[0].height,
			 l->n_levels)) {
		snprintf(msg, msglen, "a piece of an output that is not "
			 "computed lazily");
		return -RFS_E_INTERNAL;
	}
	if (part == RFS_LAZY_PART_BLOCK)
		return rfs_lazy_work_block(name, chain, l, level, bx, by, keep,
					   out_name, &res->size,
					   &res->checksum, msg, msglen);
	if (!(st = calloc((size_t)l->bands, sizeof(*st)))) {
		snprintf(msg, msglen, "out of memory");
		return -RFS_E_NOMEM;
	}
	rc = rfs_lazy_work_stats(name, chain, l, keep, st, msg, msglen);
	if (rc == 0)
		rc = rfs_lazy_work_put_stats(st, l->bands, out_name,
					     &res->size, &res->checksum, msg,
					     msglen);
	free(st);
	return rc;
}

static void run_job(int fd, struct rfs_msg *m, uint64_t max_pixels)
{
	struct rfs_chain chain, rest;
	struct rfs_output out;
	int described = 0;
	struct rfs_ops_result res = { 0 };
	char msg[RFS_MSG_MAX] = "", refused[RFS_MSG_MAX];
	char name[PATH_MAX];
	const char *source = name;
	struct job_ctx ctx = { .fd = fd, .id = m->job_id };
	struct timespec t0;
	char chain_text[RFS_CHAIN_TEXT_MAX];
	size_t chain_len = 0;
	enum rfs_lazy_part part = RFS_LAZY_WHOLE;
	int level = 0, bx = 0, by = 0, use_kept = 0;
	const struct rfs_output *o = &out;
	int rc;

	memset(&out, 0, sizeof(out));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ctx.last_time = t0;
	cur_job = m->job_id;
	cur_fd = fd;
	/* the daemon gives this job's lines to its users (log.h) */
	rfs_log_set_job(m->job_id);
	rfs_vsi_reset();
	if (confine_error[0]) {
		snprintf(msg, sizeof(msg), "%s", confine_error);
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	rc = snprintf(name, sizeof(name), "%s%s", RFS_VSI_TREE, m->source_rel);
	if (rc < 0 || (size_t)rc >= sizeof(name) || strchr(m->out_name, '/')) {
		snprintf(msg, sizeof(msg), "bad job message");
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	if ((rc = rfs_vsi_pin(name, m->src_fd)) < 0 ||
	    (m->prefix_fd >= 0 &&
	     (rc = rfs_vsi_pin(PREFIX_NAME, m->prefix_fd)) < 0)) {
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	if (m->prefix_fd >= 0)
		source = PREFIX_NAME;
	else
		rc = same_source(m->src_fd, &m->src, m->source_rel, msg,
				 sizeof(msg));
	/* a piece of a lazy output (lazy.h): the chain before its '#' */
	if (rc == 0 && (rfs_lazy_parse(m->canonical, &chain_len, &part,
				       &level, &bx, &by) < 0 ||
			chain_len >= sizeof(chain_text))) {
		snprintf(msg, sizeof(msg), "bad job message");
		rc = -RFS_E_INTERNAL;
	}
	if (rc == 0) {
		memcpy(chain_text, m->canonical, chain_len);
		chain_text[chain_len] = '\0';
		rc = rfs_chain_parse(chain_text, &chain, msg, sizeof(msg));
	}
	/* a chain from its kept prefix runs the steps after it */
	if (rc == 0 && m->prefix_fd >= 0)
		rc = rfs_chain_parse(m->canonical + m->prefix_len, &rest, msg,
				     sizeof(msg));
	/* a piece of the output kept (note on kept handles): its source
	 * was checked above, its description is the kept one */
	if (rc == 0 && part != RFS_LAZY_WHOLE && kept_matches(m, chain_text))
		use_kept = described = 1;
	else
		kept_drop();
	if (use_kept)
		o = &kept.out;
	else if (rc == 0)
		rc = describe_job(name, m->source_rel, &chain, max_pixels,
				  &out, &described, msg, sizeof(msg));
	if (rc == 0 && described)
		rc = check_space(o, &chain, msg, sizeof(msg));
	if (rc == 0 && part != RFS_LAZY_WHOLE) {
		rc = run_piece(name, &chain, described ? o : NULL, part,
			       level, bx, by, &kept.w, m->out_name, &res, msg,
			       sizeof(msg));
		goto checked;
	}
	/* The scratch directory is the working directory (confine.h). */
	if (rc == 0)
		rc = rfs_ops_run_output(source, m->prefix_fd >= 0 ? &rest :
					&chain, described ? &out : NULL, ".",
					m->out_name, job_progress, &ctx, &res,
					msg, sizeof(msg));
	/* The size stat told is the size written, or the job fails loudly
	 * (output.c note 1: both come from one description). */
	if (rc == 0 && ((m->expect_size && res.size != m->expect_size) ||
			(described && out.has_layout &&
			 res.size != out.layout.total_size))) {
		snprintf(msg, sizeof(msg), "the output has %llu bytes, but it "
			 "was described with %llu (the layout here says %llu): "
			 "describe and the job disagree",
			 (unsigned long long)res.size,
			 (unsigned long long)m->expect_size,
			 (unsigned long long)(described && out.has_layout ?
					      out.layout.total_size : 0));
		rc = -RFS_E_INTERNAL;
	}
checked:
	/* A cancel stays a cancel.  Otherwise a source that changed under
	 * the job says nothing about its new version (not remembered), and
	 * a refusal is why whatever GDAL made of it went wrong. */
	if (rc != -RFS_E_CANCELLED && m->prefix_fd < 0 &&
	    same_source(m->src_fd, &m->src, m->source_rel, msg,
			sizeof(msg)) < 0)
		rc = -RFS_E_SOURCE_CHANGED;
	else if (rc != -RFS_E_CANCELLED &&
		 rfs_vsi_refusal(refused, sizeof(refused))) {
		snprintf(msg, sizeof(msg), "%s", refused);
		rc = -RFS_E_FORBIDDEN;
	}
out:
	if (rc == 0 && part != RFS_LAZY_WHOLE && kept.w && !use_kept) {
		/* kept for the next piece: the description, the source
		 * descriptor the handle reads, its identity (checked) */
		kept.out = out;
		memset(&out, 0, sizeof(out));
		kept.fd = m->src_fd;
		m->src_fd = -1;
		kept.src = m->src;
		snprintf(kept.source_rel, sizeof(kept.source_rel), "%s",
			 m->source_rel);
		snprintf(kept.chain, sizeof(kept.chain), "%s", chain_text);
	} else if (rc != 0 || part == RFS_LAZY_WHOLE) {
		kept_drop();
	}
	rfs_output_clear(&out);
	rfs_vsi_unpin_all();
	rfs_wire_close_fds(m);
	if (rc == 0) {
		rfs_log(LOG_DEBUG, "job %llu done in %.2f s: %llu bytes",
			(unsigned long long)m->job_id, since(&t0),
			(unsigned long long)res.size);
		rfs_wire_send_done(fd, m->job_id, res.size, res.checksum);
	} else {
		unlink(m->out_name);
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s", rfs_strerror(rc));
		rfs_wire_send_failed(fd, m->job_id, rc, 0, msg);
	}
	cur_fd = -1;
	rfs_log_set_job(0);
}

/* A DESCRIBE (describer.h): the output's layout from the pinned source,
 * read exactly as a job reads it, answered DESCRIBED with its size and
 * packed layout, or FAILED (the output stays provisional). */
static void run_describe(int fd, struct rfs_msg *m, uint64_t max_pixels)
{
	struct rfs_chain chain;
	struct rfs_output out;
	char msg[RFS_MSG_MAX] = "", name[PATH_MAX];
	unsigned char *blob = NULL;
	size_t len = 0;
	int rc;

	memset(&out, 0, sizeof(out));
	/* the daemon keeps a describe's lines private (log.h) */
	rfs_log_set_job(RFS_LOG_JOB_PRIVATE);
	rfs_vsi_reset();
	if (confine_error[0]) {
		snprintf(msg, sizeof(msg), "%s", confine_error);
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	rc = snprintf(name, sizeof(name), "%s%s", RFS_VSI_TREE, m->source_rel);
	if (rc < 0 || (size_t)rc >= sizeof(name)) {
		snprintf(msg, sizeof(msg), "bad describe message");
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	if ((rc = rfs_vsi_pin(name, m->src_fd)) < 0) {
		rc = -RFS_E_INTERNAL;
		goto out;
	}
	rc = same_source(m->src_fd, &m->src, m->source_rel, msg, sizeof(msg));
	if (rc == 0)
		rc = rfs_chain_parse(m->canonical, &chain, msg, sizeof(msg));
	if (rc == 0 && chain.format != RFS_FMT_GTIFF) {
		snprintf(msg, sizeof(msg), "only a GeoTIFF is described");
		rc = -RFS_E_INTERNAL;
	}
	if (rc == 0)
		rc = rfs_output_describe(name, m->source_rel, &chain,
					 max_pixels, &out, msg, sizeof(msg));
	if (rc == 0 && !out.has_layout) {
		snprintf(msg, sizeof(msg), "a GeoTIFF of %s is written by "
			 "GDAL's driver: no size before it is computed",
			 GDALGetDataTypeName(out.grid.bands[0].type));
		rc = -RFS_E_PROCESS;
	}
	if (rc == 0 && rfs_vsi_refusal(msg, sizeof(msg)))
		rc = -RFS_E_FORBIDDEN;
	if (rc == 0 && !(blob = rfs_tiff_layout_pack(&out.layout, &len))) {
		snprintf(msg, sizeof(msg), "out of memory");
		rc = -RFS_E_NOMEM;
	}
out:
	rfs_vsi_unpin_all();
	rfs_wire_close_fds(m);
	if (rc == 0 &&
	    (rc = rfs_wire_send_described(fd, m->job_id,
					  out.layout.total_size, blob,
					  len)) == -EMSGSIZE)
		snprintf(msg, sizeof(msg), "the header (%zu bytes packed) is "
			 "larger than a message", len);
	if (rc < 0) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s", rfs_strerror(rc));
		rfs_wire_send_failed(fd, m->job_id, rc, 0, msg);
	}
	free(blob);
	rfs_output_clear(&out);
	rfs_log_set_job(0);
}

/* The first failure of a job that met a full disk (ops.h): report it and
 * end this worker, which the daemon replaces.  libtiff may otherwise sit in
 * a loop retrying its directory write at 0 bytes free. */
static void nospace_exit(const char *msg)
{
	if (cur_fd >= 0)
		rfs_wire_send_failed(cur_fd, cur_job, -RFS_E_NOSPACE,
				     RFS_WIRE_FAILED_EXIT, msg);
	_exit(3);
}

/* Every GDAL message of the worker: a failure may name an absolute path
 * that the worker's Landlock domain refused (vsi.h); then the logger. */
static void CPL_STDCALL worker_gdal_error(CPLErr cls, CPLErrorNum no,
					 const char *msg)
{
	const int saved = errno;

	if (cls >= CE_Failure && msg)
		rfs_vsi_note_error(msg);
	errno = saved;
	if (log_handler)
		log_handler(cls, no, msg);
	errno = saved;
}

/* GDAL's and PROJ's data directories: read-only for the confined worker. */
static char **data_dirs(void)
{
	char **dirs = NULL;
	const char *gdal = CPLGetConfigOption("GDAL_DATA", NULL);

	if (!gdal)
		gdal = CPLFindFile("gdal", "gdalvrt.xsd");
	if (gdal)
		dirs = CSLAddString(dirs, strstr(gdal, "gdalvrt.xsd") ?
				    CPLGetPath(gdal) : gdal);
	char **proj = OSRGetPROJSearchPaths();
	for (char **p = proj; p && *p; p++)
		dirs = CSLAddString(dirs, *p);
	CSLDestroy(proj);
	return dirs;
}

/* Confine this worker (confine.h) with the workers' user uid:gid (-1:
 * stay).  On failure confine_error says why and no job will run. */
static void confine(const char *root, long uid, long gid)
{
	char **dirs = data_dirs();
	struct rfs_confine c = {
		.root = root,
		.ro_dirs = (const char *const *)dirs,
		.uid = uid < 0 ? (uid_t)-1 : (uid_t)uid,
		.gid = gid < 0 ? (gid_t)-1 : (gid_t)gid,
	};
	struct rfs_confine_report rep;
	char msg[RFS_MSG_MAX - 64];
	int rc = rfs_confine_apply(&c, &rep, msg, sizeof(msg));

	CSLDestroy(dirs);
	if (rc < 0) {
		snprintf(confine_error, sizeof(confine_error),
			 "the worker could not be confined: %s", msg);
		rfs_log(LOG_ERR, "%s", confine_error);
		return;
	}
	rfs_log(LOG_DEBUG, "confined: uid %ld gid %ld%s, Landlock ABI %d, "
		"seccomp", (long)getuid(), (long)getgid(),
		rep.dropped ? " (dropped)" : "", rep.landlock_abi);
}

int rfs_worker_main(int argc, char **argv)
{
	if (argc < 12) {
		fprintf(stderr, "rasterfs: %s is internal to rasterfs\n",
			RFS_WORKER_ARG);
		return 2;
	}
	int fd = atoi(argv[1]);
	pid_t parent = (pid_t)atol(argv[2]);
	int cache_mb = atoi(argv[3]);
	/* "daemon": stderr is the daemon's pipe for its workers' lines
	 * (log.h, rfs_log_capture_start); the daemon logs them as its own. */
	enum rfs_log_sink sink = strcmp(argv[4], "syslog") == 0 ?
		RFS_LOG_SYSLOG : strcmp(argv[4], "daemon") == 0 ?
		RFS_LOG_DAEMON : RFS_LOG_STDERR;

	/* Keep nothing of the daemon's but the socket: not its LMDB files,
	 * not (once it is a daemon) the terminal or pipe it was started from,
	 * which a reader such as `rasterfs SRC MNT | cat` waits on. */
	if (fd > 3)
		close_range(3, (unsigned)fd - 1, 0);
	close_range((unsigned)fd + 1, ~0U, 0);
	if (sink == RFS_LOG_SYSLOG || sink == RFS_LOG_DAEMON) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			if (sink == RFS_LOG_SYSLOG)
				dup2(null, STDERR_FILENO);
			close(null);
		}
	}

	/* Die with the daemon; if it already died, do not linger. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	/* Ctrl-C on a foreground mount reaches the whole process group; the
	 * daemon decides when workers stop. */
	signal(SIGINT, SIG_IGN);
	/* Before PROJ makes its first context. */
	setenv("PROJ_NETWORK", "OFF", 1);
	/* Before the first localtime: /etc is out of reach once confined. */
	tzset();
	/* Opens syslog with LOG_NDELAY: no socket can be made once
	 * confined. */
	rfs_log_init("rasterfs-worker", sink, atoi(argv[5]));
	log_handler = CPLSetErrorHandler(worker_gdal_error);
	uint64_t worker_mem = strtoull(argv[6], NULL, 10);
	uint64_t max_pixels = strtoull(argv[7], NULL, 10);
	const char *scratch = argv[8], *root = argv[9];
	long uid = atol(argv[10]), gid = atol(argv[11]);

	/* Everything in scratch by relative names from here on: a worker
	 * that drops its privileges may not traverse the cache directory
	 * above it (confine.h). */
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (chdir(scratch) < 0 || rootfd < 0)
		snprintf(confine_error, sizeof(confine_error),
			 "cannot enter scratch %s or source root %s: %s",
			 scratch, root, strerror(errno));
	rfs_ops_init(cache_mb);
	rfs_ops_set_nospace_hook(nospace_exit);
	/* Temporary files of GDAL (COG overviews ...) in scratch too. */
	CPLSetConfigOption("CPL_TMPDIR", ".");
	if (!confine_error[0] && rfs_vsi_install(rootfd, root) < 0)
		snprintf(confine_error, sizeof(confine_error),
			 "cannot install the GDAL file systems: %s",
			 strerror(ENOMEM));
	if (!confine_error[0])
		confine(root, uid, gid);
	/* The drop cleared the parent-death signal; set it again. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return 1;
	/* confined (single-threaded until here), not yet capped */
	if (!confine_error[0])
		rfs_ops_start_threads();
	if (worker_mem) {
		/* Above the idle footprint: libraries map hundreds of MB of
		 * address space that cost no memory. */
		struct rlimit rl;
		mem_cap = vm_bytes() + worker_mem;
		rl.rlim_cur = rl.rlim_max = mem_cap;
		if (setrlimit(RLIMIT_AS, &rl) < 0) {
			rfs_log(LOG_WARNING, "worker_mem: setrlimit: %s",
				strerror(errno));
			mem_cap = 0;
		}
		signal(SIGSEGV, fatal_signal);
		signal(SIGABRT, fatal_signal);
		signal(SIGBUS, fatal_signal);
	}

	for (;;) {
		static struct rfs_msg m;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		/* a kept handle goes after RFS_KEPT_IDLE s without a job */
		if (kept.fd >= 0 && poll(&p, 1, RFS_KEPT_IDLE * 1000) == 0)
			kept_drop();
		int rc = rfs_wire_recv(fd, &m);
		if (rc == -EPIPE)
			return 0;
		if (rc < 0) {
			rfs_log(LOG_ERR, "bad message from the daemon: %s",
				rfs_strerror(rc));
			return 1;
		}
		if (m.type == RFS_MSG_JOB)
			run_job(fd, &m, max_pixels);
		else if (m.type == RFS_MSG_DESCRIBE)
			run_describe(fd, &m, max_pixels);
		/* A CANCEL for a job that already ended needs nothing. */
	}
}

/* ---- the daemon's side ------------------------------------------------ */

extern char **environ;

int rfs_worker_spawn(const struct rfs_worker_spawn *w, pid_t *pid, int *fd)
{
	int sv[2], rc;
	char fdarg[16], ppid[24], cache[16], level[8], mem[24], maxpix[24];
	char uid[24], gid[24];
	posix_spawn_file_actions_t fa;

	/* A worker that drops to another user still writes its scratch: it
	 * is that user's (the directories above it stay the daemon's; the
	 * worker works in it by relative paths, confine.h). */
	if (w->uid != (uid_t)-1 && chown(w->scratch, w->uid, w->gid) < 0) {
		rc = -errno;
		rfs_log(LOG_ERR, "cannot give scratch %s to uid %ld: %s",
			w->scratch, (long)w->uid, strerror(errno));
		return rc;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* The worker's end is the only descriptor it inherits. */
	fcntl(sv[1], F_SETFD, 0);
	snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	snprintf(cache, sizeof(cache), "%d", w->gdal_cache_mb);
	snprintf(level, sizeof(level), "%d", w->log_level);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)w->worker_mem);
	snprintf(maxpix, sizeof(maxpix), "%llu",
		 (unsigned long long)w->max_pixels);
	snprintf(uid, sizeof(uid), "%ld", w->uid == (uid_t)-1 ? -1L :
		 (long)w->uid);
	snprintf(gid, sizeof(gid), "%ld", w->uid == (uid_t)-1 ? -1L :
		 (long)w->gid);
	char *argv[] = {
		"rasterfs-worker", RFS_WORKER_ARG, fdarg, ppid, cache,
		w->log_sink == RFS_LOG_SYSLOG ? "syslog" :
		w->log_sink == RFS_LOG_DAEMON ? "daemon" : "stderr", level,
		mem, maxpix, (char *)w->scratch, (char *)w->root, uid, gid,
		NULL,
	};
	posix_spawn_file_actions_init(&fa);
	/* Its lines come to the daemon's log (and the mount's ring). */
	if (w->log_sink == RFS_LOG_DAEMON)
		posix_spawn_file_actions_adddup2(&fa, w->log_fd, STDERR_FILENO);
	rc = posix_spawn(pid, w->exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	if (rc != 0) {
		close(sv[0]);
		rfs_log(LOG_ERR, "cannot start a worker (%s): %s", w->exe,
			strerror(rc));
		return -rc;
	}
	*fd = sv[0];
	fcntl(*fd, F_SETFL, O_NONBLOCK);
	return 0;
}
