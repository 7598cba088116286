/* describer.h - describing outputs before any pixel, in processes of
 * their own.
 *
 * `stat` of a GeoTIFF output that was never computed reports its exact
 * size: a describer process works it out from the source's header
 * (output.h: the chain's description and the byte layout of the file the
 * job will write), and the store keeps it as a description record
 * (store.h), so the next `stat`, in this mount or after a remount, needs
 * no describer.  GDAL runs only in worker processes, so describers are
 * worker processes (worker.h: the same binary, the same confinement, the
 * source read through the same pinned descriptor), dedicated to DESCRIBE
 * requests (wire.h) so that a describe never queues behind a long job.
 *
 * One describe per key however many lookups ask at once (single flight);
 * each waiter is called back exactly once.  One manager thread talks to
 * the describers: it dispatches queued describes, hands results to the
 * store's committer, and stops any describe that is not answered within
 * the configured timeout (queue time included): a describer that stalls
 * is killed and replaced.  A describe that fails (a source GDAL cannot
 * open, a type the writer does not take, a timeout) leaves the output
 * provisional (size 0 until computed), and is remembered for retry_after
 * seconds so that repeated lookups do not ask again.
 *
 * Life of a describe (the manager thread makes every transition except
 * the first and the lookups):
 *
 *   QUEUED --dispatch--> RUNNING --DESCRIBED--> DONE --record written-->
 *   gone (the store answers from then on)
 *   RUNNING --FAILED, describer died, timeout--> FAILED --retry_after-->
 *   gone
 *   QUEUED --timeout--> FAILED
 */
#ifndef RASTERFS_DESCRIBER_H
#define RASTERFS_DESCRIBER_H

#include <stdint.h>

#include "rasterfs/stats.h"
#include "rasterfs/store.h"
#include "rasterfs/worker.h"

typedef struct rfs_describer rfs_describer;

struct rfs_describer_config {
	unsigned procs;             /* describer processes, >= 1 */
	struct rfs_worker_spawn spawn; /* how to start one (scratch: each
	                               gets its own, ignored here) */
	unsigned timeout;           /* s a describe may take, queue time
	                               included, >= 1 */
	unsigned retry_after;       /* s a failed key fails at once */
	unsigned first_slot;        /* scratch slots first_slot.. of the
	                               store (after the pool's) */
};

/* What is to be described.  src_fd: the source, opened once beneath the
 * root (fs_open.c), whose identity the key was made from; it becomes the
 * describer's whatever rfs_describer_request returns. */
struct rfs_describe_spec {
	rfs_key key;
	struct rfs_src_id src;
	int src_fd;
	const char *source_rel;
	const char *canonical;      /* of a GeoTIFF output */
};

/* Called once per waiter when its describe ends: rc 0 and the output's
 * exact size, or a negative code (the output stays provisional).  Called
 * on the manager thread, with no lock of the describer held. */
typedef void (*rfs_describe_done_fn)(void *arg, int rc, uint64_t size);

/* Start procs describer processes and the manager thread.  Returns 0 and
 * *out, or -errno (a describer could not be started; logged). */
int rfs_describer_new(const struct rfs_describer_config *cfg,
		      rfs_store *store, struct rfs_stats *stats,
		      rfs_describer **out);

/* Is key described already: a record of this rasterfs, GDAL and PROJ in
 * the store, or a describe that just ended (its record on its way to the
 * store)?  Returns 0 and *size, or -ENOENT.  No describer is asked. */
int rfs_describer_lookup(rfs_describer *d, const rfs_key *key,
			 const struct rfs_src_id *src, const char *canonical,
			 uint64_t *size);

/* Ask for key to be described, fn(arg, ...) called when it is.  Returns
 * 0 (fn will be called exactly once), 1 and *size (described meanwhile:
 * fn will not be called), or a negative code (fn will not be called):
 * -RFS_E_SHUTDOWN, -ENOMEM, or the code of the key's describe that failed
 * less than retry_after seconds ago. */
int rfs_describer_request(rfs_describer *d,
			  const struct rfs_describe_spec *spec,
			  rfs_describe_done_fn fn, void *arg, uint64_t *size);

/* Detach the waiter arg from key's describe.  Returns 1 if it was
 * detached (fn will not be called for it), 0 if not found (fn has been or
 * is being called).  Callable from a FUSE interrupt callback. */
int rfs_describer_cancel_waiter(rfs_describer *d, const rfs_key *key,
				void *arg);

/* The stamp description records of this process carry (store.h): a hash
 * of the rasterfs, GDAL and PROJ versions, whose strings are in every
 * output's provenance, so a record made by other versions is a miss. */
uint64_t rfs_describer_stamp(void);

/* Stop: describers end, waiting describes fail with -RFS_E_SHUTDOWN,
 * records on their way to the store are waited for (a few seconds at
 * most).  Call before rfs_store_close.  NULL ok. */
void rfs_describer_free(rfs_describer *d);

#endif
