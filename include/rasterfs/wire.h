/* wire.h - the protocol between the daemon and its worker processes.
 *
 * One SOCK_SEQPACKET socketpair per worker: every send is one whole
 * message, so there is no framing to get wrong and a dead peer reads as
 * EOF.  Each message is a fixed header followed by a type-specific payload:
 *
 *   daemon -> worker
 *     JOB       a job to run: source path, canonical chain, output path
 *     CANCEL    stop the running job (its job_id); the worker answers FAILED
 *               with RFS_E_CANCELLED
 *   worker -> daemon
 *     PROGRESS  fraction of the job done (0..1), at most ~1 per percent
 *     DONE      the output is written and fsynced: size and checksum
 *     FAILED    rasterfs code and a one-line message
 *
 * Both ends run on the same machine and binary, so integers travel in host
 * byte order.  Strings travel NUL-terminated and are checked on receipt.
 */
#ifndef RASTERFS_WIRE_H
#define RASTERFS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define RFS_WIRE_MAX 16384 /* largest message */

enum rfs_msg_type {
	RFS_MSG_JOB = 1,
	RFS_MSG_CANCEL = 2,
	RFS_MSG_PROGRESS = 3,
	RFS_MSG_DONE = 4,
	RFS_MSG_FAILED = 5,
};

struct rfs_msg {
	enum rfs_msg_type type;
	uint64_t job_id;
	/* JOB */
	const char *source;    /* absolute path of the source raster */
	const char *canonical; /* canonical chain, re-parsed by the worker */
	const char *out_path;  /* where to write, inside the worker's scratch */
	/* PROGRESS */
	double progress;
	/* DONE */
	uint64_t size;
	uint64_t checksum;
	/* FAILED */
	int code;              /* negative rasterfs code or errno */
	const char *message;
	/* storage the string pointers point into */
	char buf[RFS_WIRE_MAX];
};

/* Each send returns 0, or -errno (-EPIPE when the peer is gone). */
int rfs_wire_send_job(int fd, uint64_t id, const char *source,
		      const char *canonical, const char *out_path);
int rfs_wire_send_cancel(int fd, uint64_t id);
int rfs_wire_send_progress(int fd, uint64_t id, double progress);
int rfs_wire_send_done(int fd, uint64_t id, uint64_t size, uint64_t checksum);
int rfs_wire_send_failed(int fd, uint64_t id, int code, const char *message);

/* Receive one message into *m (blocking unless fd is non-blocking).
 * Returns 0, -EAGAIN (non-blocking, nothing there), -EPIPE on EOF (the peer
 * is gone), -EPROTO for a malformed message, or -errno. */
int rfs_wire_recv(int fd, struct rfs_msg *m);

#endif
