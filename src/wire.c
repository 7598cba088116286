/* wire.c - daemon <-> worker messages over a SOCK_SEQPACKET socketpair,
 * descriptors passed with SCM_RIGHTS. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rasterfs/wire.h"

/* JOB payload before its strings. */
struct job_fixed {
	struct rfs_src_id src;
	uint32_t flags;
	uint32_t prefix_len; /* 0 without RFS_WIRE_JOB_PREFIX */
	uint64_t expect_size;
};

/* DESCRIBE payload before its strings. */
struct describe_fixed {
	struct rfs_src_id src;
	uint32_t flags;    /* 0 */
	uint32_t reserved; /* 0 */
};

int rfs_wire_send_raw(int fd, uint32_t type, uint64_t id, const void *payload,
		      size_t len, const int *fds, int nfds)
{
	char buf[sizeof(struct rfs_wire_hdr) + RFS_WIRE_MAX];
	struct rfs_wire_hdr h = { .type = type, .len = (uint32_t)len,
				  .job_id = id };
	union {
		char b[CMSG_SPACE(sizeof(int) * RFS_WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (len > RFS_WIRE_MAX)
		return -EMSGSIZE;
	if (nfds < 0 || nfds > RFS_WIRE_MAX_FDS)
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	iov.iov_base = buf;
	iov.iov_len = sizeof(h) + len;
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == ECONNRESET ? -EPIPE : -errno;
	}
}

/* Append NUL-terminated strings to buf at off; returns the new length or
 * -EMSGSIZE. */
static int pack_strings(char *buf, size_t cap, size_t off,
			const char *const *s, int n)
{
	for (int i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		if (off + l > cap)
			return -EMSGSIZE;
		memcpy(buf + off, s[i], l);
		off += l;
	}
	return (int)off;
}

int rfs_wire_send_job(int fd, uint64_t id, const struct rfs_wire_job *job)
{
	char buf[RFS_WIRE_MAX];
	struct job_fixed f = { .src = job->src,
			       .expect_size = job->expect_size };
	const char *s[] = { job->source_rel, job->canonical, job->out_name };
	int fds[2] = { job->src_fd, job->prefix_fd };
	int nfds = 1;

	if (job->src_fd < 0)
		return -EINVAL;
	if (job->prefix_fd >= 0) {
		if (job->prefix_len == 0 ||
		    job->prefix_len >= strlen(job->canonical))
			return -EINVAL;
		f.flags |= RFS_WIRE_JOB_PREFIX;
		f.prefix_len = job->prefix_len;
		nfds = 2;
	}
	memcpy(buf, &f, sizeof(f));
	int n = pack_strings(buf, sizeof(buf), sizeof(f), s, 3);

	return n < 0 ? n : rfs_wire_send_raw(fd, RFS_MSG_JOB, id, buf,
					     (size_t)n, fds, nfds);
}

int rfs_wire_send_describe(int fd, uint64_t id, const struct rfs_src_id *src,
			   const char *source_rel, const char *canonical,
			   int src_fd)
{
	char buf[RFS_WIRE_MAX];
	struct describe_fixed f = { .src = *src };
	const char *s[] = { source_rel, canonical };

	if (src_fd < 0)
		return -EINVAL;
	memcpy(buf, &f, sizeof(f));
	int n = pack_strings(buf, sizeof(buf), sizeof(f), s, 2);

	return n < 0 ? n : rfs_wire_send_raw(fd, RFS_MSG_DESCRIBE, id, buf,
					     (size_t)n, &src_fd, 1);
}

int rfs_wire_send_described(int fd, uint64_t id, uint64_t size,
			    const void *blob, size_t len)
{
	static __thread char buf[RFS_WIRE_MAX];

	if (len < 1 || len > RFS_WIRE_MAX - sizeof(size))
		return len < 1 ? -EINVAL : -EMSGSIZE;
	memcpy(buf, &size, sizeof(size));
	memcpy(buf + sizeof(size), blob, len);
	return rfs_wire_send_raw(fd, RFS_MSG_DESCRIBED, id, buf,
				 sizeof(size) + len, NULL, 0);
}

int rfs_wire_send_cancel(int fd, uint64_t id)
{
	return rfs_wire_send_raw(fd, RFS_MSG_CANCEL, id, NULL, 0, NULL, 0);
}

int rfs_wire_send_progress(int fd, uint64_t id, double progress)
{
	return rfs_wire_send_raw(fd, RFS_MSG_PROGRESS, id, &progress,
				 sizeof(progress), NULL, 0);
}

int rfs_wire_send_done(int fd, uint64_t id, uint64_t size, uint64_t checksum)
{
	uint64_t p[2] = { size, checksum };

	return rfs_wire_send_raw(fd, RFS_MSG_DONE, id, p, sizeof(p), NULL, 0);
}

int rfs_wire_send_failed(int fd, uint64_t id, int code, unsigned flags,
			 const char *message)
{
	char buf[RFS_WIRE_MAX];
	int32_t c = code;
	uint32_t f = flags;
	const size_t h = sizeof(c) + sizeof(f);
	size_t l = strnlen(message, RFS_WIRE_MAX - h - 1);

	memcpy(buf, &c, sizeof(c));
	memcpy(buf + sizeof(c), &f, sizeof(f));
	memcpy(buf + h, message, l);
	buf[h + l] = '\0';
	return rfs_wire_send_raw(fd, RFS_MSG_FAILED, id, buf, h + l + 1,
				 NULL, 0);
}

/* Point *out at the next NUL-terminated string in [*p, end). */
static int take_string(char **p, char *end, const char **out)
{
	char *nul = memchr(*p, '\0', (size_t)(end - *p));

	if (!nul)
		return -EPROTO;
	*out = *p;
	*p = nul + 1;
	return 0;
}

void rfs_wire_close_fds(struct rfs_msg *m)
{
	if (m->src_fd >= 0)
		close(m->src_fd);
	if (m->prefix_fd >= 0)
		close(m->prefix_fd);
	m->src_fd = m->prefix_fd = -1;
}

/* The payload of m (h.len bytes in m->buf) with the nfds descriptors in
 * fds: 0, or -EPROTO. */
static int parse(struct rfs_msg *m, const struct rfs_wire_hdr *h,
		 const int *fds, int nfds)
{
	char *p = m->buf, *end = m->buf + h->len;

	switch (m->type) {
	case RFS_MSG_JOB: {
		struct job_fixed f;
		if (h->len < sizeof(f))
			return -EPROTO;
		memcpy(&f, p, sizeof(f));
		p += sizeof(f);
		if ((f.flags & ~RFS_WIRE_JOB_PREFIX) ||
		    nfds != ((f.flags & RFS_WIRE_JOB_PREFIX) ? 2 : 1) ||
		    !(f.flags & RFS_WIRE_JOB_PREFIX) != !f.prefix_len)
			return -EPROTO;
		if (take_string(&p, end, &m->source_rel) ||
		    take_string(&p, end, &m->canonical) ||
		    take_string(&p, end, &m->out_name) || p != end ||
		    f.prefix_len >= strlen(m->canonical))
			return -EPROTO;
		m->src = f.src;
		m->flags = f.flags;
		m->prefix_len = f.prefix_len;
		m->expect_size = f.expect_size;
		m->src_fd = fds[0];
		m->prefix_fd = nfds == 2 ? fds[1] : -1;
		return 0;
	}
	case RFS_MSG_DESCRIBE: {
		struct describe_fixed f;
		if (h->len < sizeof(f) || nfds != 1)
			return -EPROTO;
		memcpy(&f, p, sizeof(f));
		p += sizeof(f);
		if (f.flags || f.reserved ||
		    take_string(&p, end, &m->source_rel) ||
		    take_string(&p, end, &m->canonical) || p != end)
			return -EPROTO;
		m->src = f.src;
		m->src_fd = fds[0];
		return 0;
	}
	case RFS_MSG_DESCRIBED:
		if (h->len < sizeof(uint64_t) + 1 || nfds)
			return -EPROTO;
		memcpy(&m->size, p, sizeof(uint64_t));
		m->blob = (const unsigned char *)p + sizeof(uint64_t);
		m->blob_len = h->len - sizeof(uint64_t);
		return 0;
	case RFS_MSG_CANCEL:
		return h->len == 0 && nfds == 0 ? 0 : -EPROTO;
	case RFS_MSG_PROGRESS:
		if (h->len != sizeof(double) || nfds)
			return -EPROTO;
		memcpy(&m->progress, p, sizeof(double));
		return 0;
	case RFS_MSG_DONE:
		if (h->len != 2 * sizeof(uint64_t) || nfds)
			return -EPROTO;
		memcpy(&m->size, p, sizeof(uint64_t));
		memcpy(&m->checksum, p + sizeof(uint64_t), sizeof(uint64_t));
		return 0;
	case RFS_MSG_FAILED: {
		int32_t c;
		uint32_t f;
		if (h->len < sizeof(c) + sizeof(f) + 1 || nfds)
			return -EPROTO;
		memcpy(&c, p, sizeof(c));
		memcpy(&f, p + sizeof(c), sizeof(f));
		if (f & ~RFS_WIRE_FAILED_EXIT)
			return -EPROTO;
		m->code = c;
		m->flags = f;
		p += sizeof(c) + sizeof(f);
		if (take_string(&p, end, &m->message) || p != end)
			return -EPROTO;
		return 0;
	}
	}
	return -EPROTO;
}

int rfs_wire_recv(int fd, struct rfs_msg *m)
{
	char raw[sizeof(struct rfs_wire_hdr) + RFS_WIRE_MAX];
	/* Room for more descriptors than any message takes, so that one too
	 * many is seen (and closed) rather than dropped by the kernel. */
	enum { FDCAP = RFS_WIRE_MAX_FDS + 2 };
	union {
		char b[CMSG_SPACE(sizeof(int) * FDCAP)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = raw, .iov_len = sizeof(raw) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.b, .msg_controllen = sizeof(ctl.b),
	};
	struct rfs_wire_hdr h;
	int fds[FDCAP], nfds = 0, rc = -EPROTO;
	ssize_t n;

	do
		n = recvmsg(fd, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	/* Every descriptor that arrived, whatever else is wrong. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c;
	     c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue; /* nothing else is asked for */
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int d;
			memcpy(&d, CMSG_DATA(c) + i * sizeof(int), sizeof(d));
			if (nfds < FDCAP)
				fds[nfds++] = d;
			else
				close(d);
		}
	}
	memset(m, 0, offsetof(struct rfs_msg, buf));
	m->src_fd = m->prefix_fd = -1;
	if (n == 0 && nfds == 0)
		return -EPIPE;
	if ((mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || nfds > RFS_WIRE_MAX_FDS ||
	    (size_t)n < sizeof(h) || (size_t)n > sizeof(raw))
		goto out;
	memcpy(&h, raw, sizeof(h));
	if (h.len != (size_t)n - sizeof(h))
		goto out;
	m->type = (enum rfs_msg_type)h.type;
	m->job_id = h.job_id;
	memcpy(m->buf, raw + sizeof(h), h.len);
	rc = parse(m, &h, fds, nfds);
out:
	if (rc < 0) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		m->src_fd = m->prefix_fd = -1;
	}
	return rc;
}
