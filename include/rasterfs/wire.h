/* wire.h - the protocol between the daemon and its worker processes.
 *
 * One SOCK_SEQPACKET socketpair per worker: every send is one whole
 * message, so there is no framing to get wrong and a dead peer reads as
 * EOF.  Each message is a fixed header (struct rfs_wire_hdr) followed by a
 * type-specific payload, and may carry descriptors (SCM_RIGHTS):
 *
 *   daemon -> worker
 *     JOB       a job to run: the source's identity (struct rfs_src_id),
 *               flags, the length of the kept prefix in the chain, the
 *               size the output was described with (0: not described),
 *               then three strings: the source's path below the source
 *               root, the whole canonical chain, the output's file name
 *               (inside the worker's scratch directory, its working
 *               directory).  Descriptors: the source, opened by the daemon
 *               (the worker never opens it by name: it is pinned), and with
 *               RFS_WIRE_JOB_PREFIX the kept prefix object the chain starts
 *               from (pool.c note 7; the steps after the prefix's length
 *               run from it) - exactly 1, or 2 with the flag.
 *     CANCEL    stop the running job (its job_id); the worker answers FAILED
 *               with RFS_E_CANCELLED
 *     DESCRIBE  describe an output without computing it (output.h): the
 *               source's identity, then two strings: the source's path
 *               below the root and the canonical chain.  Descriptor: the
 *               pinned source, exactly 1.  Sent to describer processes
 *               only (describer.h).
 *   worker -> daemon
 *     PROGRESS  fraction of the job done (0..1), at most ~1 per percent
 *     DONE      the output is written, checked and fsynced: size and
 *               checksum
 *     FAILED    rasterfs code, flags and a one-line message; with
 *               RFS_WIRE_FAILED_EXIT the worker is exiting (it must be
 *               given no other job); also the answer to a DESCRIBE that
 *               could not be described
 *     DESCRIBED the answer to a DESCRIBE: the output's exact size, then its
 *               packed layout (tiff.h), at least one byte
 *
 * Both ends run on the same machine and binary, so integers travel in host
 * byte order.  Strings travel NUL-terminated.  Everything is checked on
 * receipt: a wrong length, a string without its NUL, descriptors on a
 * message that takes none or the wrong number of them are -EPROTO, and
 * every descriptor received with a message that is refused is closed.
 */
#ifndef RASTERFS_WIRE_H
#define RASTERFS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "rasterfs/store.h"

#define RFS_WIRE_MAX 65536 /* largest payload (a DESCRIBED's layout) */
#define RFS_WIRE_MAX_FDS 2 /* descriptors one message may carry */

enum rfs_msg_type {
	RFS_MSG_JOB = 1,
	RFS_MSG_CANCEL = 2,
	RFS_MSG_PROGRESS = 3,
	RFS_MSG_DONE = 4,
	RFS_MSG_FAILED = 5,
	RFS_MSG_DESCRIBE = 6,
	RFS_MSG_DESCRIBED = 7,
};

/* The header in front of every payload (public so tests can forge
 * malformed messages). */
struct rfs_wire_hdr {
	uint32_t type;
	uint32_t len; /* payload bytes */
	uint64_t job_id;
};

#define RFS_WIRE_JOB_PREFIX 1u /* JOB flag: fds[1] is the prefix object */
#define RFS_WIRE_FAILED_EXIT 1u /* FAILED flag: the worker is exiting */

/* What the daemon sends with a JOB. */
struct rfs_wire_job {
	struct rfs_src_id src;  /* identity the key was made from */
	const char *source_rel; /* path below the source root */
	const char *canonical;  /* the whole chain */
	const char *out_name;   /* file name in the worker's scratch */
	int src_fd;             /* the pinned source (not closed here) */
	int prefix_fd;          /* the kept prefix object, or -1 */
	uint32_t prefix_len;    /* with prefix_fd: the prefix's length in
	                           canonical; the rest runs from it */
	uint64_t expect_size;   /* the described size; 0: none */
};

struct rfs_msg {
	enum rfs_msg_type type;
	uint64_t job_id;
	/* JOB: strings point into buf; the descriptors are the receiver's
	 * to close (rfs_wire_close_fds) */
	struct rfs_src_id src;
	uint32_t flags;         /* RFS_WIRE_JOB_*, RFS_WIRE_FAILED_* */
	const char *source_rel;
	const char *canonical;
	const char *out_name;
	uint32_t prefix_len;    /* JOB with RFS_WIRE_JOB_PREFIX: < strlen
	                           of canonical, and > 0 */
	uint64_t expect_size;   /* JOB */
	int src_fd;             /* -1 unless JOB or DESCRIBE */
	int prefix_fd;          /* -1 unless JOB with RFS_WIRE_JOB_PREFIX */
	/* PROGRESS */
	double progress;
	/* DONE */
	uint64_t size;
	uint64_t checksum;
	/* FAILED */
	int code;              /* negative rasterfs code or errno */
	const char *message;
	/* DESCRIBED: size, and the packed layout (into buf) */
	const unsigned char *blob;
	size_t blob_len;
	/* storage the string pointers point into */
	char buf[RFS_WIRE_MAX];
};

/* Each send returns 0, or -errno (-EPIPE when the peer is gone,
 * -EMSGSIZE when the strings do not fit, -EINVAL for a JOB without a
 * source descriptor). */
int rfs_wire_send_job(int fd, uint64_t id, const struct rfs_wire_job *job);
int rfs_wire_send_cancel(int fd, uint64_t id);
int rfs_wire_send_progress(int fd, uint64_t id, double progress);
int rfs_wire_send_done(int fd, uint64_t id, uint64_t size, uint64_t checksum);
int rfs_wire_send_failed(int fd, uint64_t id, int code, unsigned flags,
			 const char *message);
/* DESCRIBE of (src, source_rel, canonical) with the pinned source src_fd
 * (-EINVAL when it is < 0); DESCRIBED with size and len (>= 1) bytes of
 * blob (-EMSGSIZE when they do not fit in RFS_WIRE_MAX). */
int rfs_wire_send_describe(int fd, uint64_t id, const struct rfs_src_id *src,
			   const char *source_rel, const char *canonical,
			   int src_fd);
int rfs_wire_send_described(int fd, uint64_t id, uint64_t size,
			    const void *blob, size_t len);

/* One message as it is framed: header, payload, descriptors (nfds up to
 * RFS_WIRE_MAX_FDS; they stay the caller's).  The senders above use it;
 * tests use it to send what a well-behaved peer never would.  Returns 0 or
 * -errno as they do. */
int rfs_wire_send_raw(int fd, uint32_t type, uint64_t id, const void *payload,
		      size_t len, const int *fds, int nfds);

/* Receive one message into *m (blocking unless fd is non-blocking).
 * Returns 0, -EAGAIN (non-blocking, nothing there), -EPIPE on EOF (the peer
 * is gone), -EPROTO for a malformed message (its descriptors closed), or
 * -errno.  On 0 the descriptors in *m are the caller's. */
int rfs_wire_recv(int fd, struct rfs_msg *m);

/* Close the descriptors a received message holds and mark them -1. */
void rfs_wire_close_fds(struct rfs_msg *m);

#endif
