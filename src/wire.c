/* wire.c - daemon <-> worker messages over a SOCK_SEQPACKET socketpair. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "rasterfs/wire.h"

struct hdr {
	uint32_t type;
	uint32_t len; /* payload bytes */
	uint64_t job_id;
};

static int send_msg(int fd, uint32_t type, uint64_t id, const void *payload,
		    size_t len)
{
	char buf[sizeof(struct hdr) + RFS_WIRE_MAX];
	struct hdr h = { .type = type, .len = (uint32_t)len, .job_id = id };

	if (len > RFS_WIRE_MAX)
		return -EMSGSIZE;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	for (;;) {
		ssize_t n = send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno == EINTR)
			continue;
		return errno == ECONNRESET ? -EPIPE : -errno;
	}
}

/* Append NUL-terminated strings to buf; returns the length or -EMSGSIZE. */
static int pack_strings(char *buf, size_t cap, const char *const *s, int n)
{
	size_t off = 0;

	for (int i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		if (off + l > cap)
			return -EMSGSIZE;
		memcpy(buf + off, s[i], l);
		off += l;
	}
	return (int)off;
}

int rfs_wire_send_job(int fd, uint64_t id, const char *source,
		      const char *canonical, const char *out_path)
{
	char buf[RFS_WIRE_MAX];
	const char *s[] = { source, canonical, out_path };
	int n = pack_strings(buf, sizeof(buf), s, 3);

	return n < 0 ? n : send_msg(fd, RFS_MSG_JOB, id, buf, (size_t)n);
}

int rfs_wire_send_cancel(int fd, uint64_t id)
{
	return send_msg(fd, RFS_MSG_CANCEL, id, NULL, 0);
}

int rfs_wire_send_progress(int fd, uint64_t id, double progress)
{
	return send_msg(fd, RFS_MSG_PROGRESS, id, &progress, sizeof(progress));
}

int rfs_wire_send_done(int fd, uint64_t id, uint64_t size, uint64_t checksum)
{
	uint64_t p[2] = { size, checksum };

	return send_msg(fd, RFS_MSG_DONE, id, p, sizeof(p));
}

int rfs_wire_send_failed(int fd, uint64_t id, int code, const char *message)
{
	char buf[RFS_WIRE_MAX];
	int32_t c = code;
	size_t l = strnlen(message, RFS_WIRE_MAX - sizeof(c) - 1);

	memcpy(buf, &c, sizeof(c));
	memcpy(buf + sizeof(c), message, l);
	buf[sizeof(c) + l] = '\0';
	return send_msg(fd, RFS_MSG_FAILED, id, buf, sizeof(c) + l + 1);
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

int rfs_wire_recv(int fd, struct rfs_msg *m)
{
	char raw[sizeof(struct hdr) + RFS_WIRE_MAX];
	struct hdr h;
	ssize_t n;

	do
		n = recv(fd, raw, sizeof(raw), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	if (n == 0)
		return -EPIPE;
	if ((size_t)n < sizeof(h) || (size_t)n > sizeof(raw))
		return -EPROTO;
	memcpy(&h, raw, sizeof(h));
	if (h.len != (size_t)n - sizeof(h))
		return -EPROTO;

	memset(m, 0, offsetof(struct rfs_msg, buf));
	m->type = (enum rfs_msg_type)h.type;
	m->job_id = h.job_id;
	memcpy(m->buf, raw + sizeof(h), h.len);
	char *p = m->buf, *end = m->buf + h.len;

	switch (m->type) {
	case RFS_MSG_JOB:
		if (take_string(&p, end, &m->source) ||
		    take_string(&p, end, &m->canonical) ||
		    take_string(&p, end, &m->out_path))
			return -EPROTO;
		return 0;
	case RFS_MSG_CANCEL:
		return h.len == 0 ? 0 : -EPROTO;
	case RFS_MSG_PROGRESS:
		if (h.len != sizeof(double))
			return -EPROTO;
		memcpy(&m->progress, p, sizeof(double));
		return 0;
	case RFS_MSG_DONE:
		if (h.len != 2 * sizeof(uint64_t))
			return -EPROTO;
		memcpy(&m->size, p, sizeof(uint64_t));
		memcpy(&m->checksum, p + sizeof(uint64_t), sizeof(uint64_t));
		return 0;
	case RFS_MSG_FAILED: {
		int32_t c;
		if (h.len < sizeof(c) + 1)
			return -EPROTO;
		memcpy(&c, p, sizeof(c));
		m->code = c;
		p += sizeof(c);
		return take_string(&p, end, &m->message);
	}
	}
	return -EPROTO;
}
