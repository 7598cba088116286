/* test_wire.c - the daemon <-> worker protocol on a real SOCK_SEQPACKET
 * socketpair: descriptors passed with SCM_RIGHTS arrive as the same open
 * files (fstat identity, bytes, close-on-exec), and every malformed
 * message is -EPROTO with every descriptor it carried closed (the
 * process's open descriptors, counted in /proc/self/fd, are back to what
 * they were).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rasterfs/wire.h"

#include "check.h"


static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* A temporary file holding text; returns its descriptor. */
static int temp_file(const char *text)
{
	char path[] = "/tmp/rfs-test-wire-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	unlink(path);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror("write");
		exit(2);
	}
	return fd;
}

static int same_file(int a, int b)
{
	struct stat x, y;

	return fstat(a, &x) == 0 && fstat(b, &y) == 0 &&
	       x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

static void test_job_roundtrip(int sv[2])
{
	int src = temp_file("source bytes"), pre = temp_file("prefix");
	struct rfs_wire_job j = {
		.src = { .dev = 1, .ino = 2, .size = 3, .mtime_ns = -4 },
		.source_rel = "sub/dem.tif",
		.canonical = "@focal=3,mean,square",
		.out_name = "0123.tif",
		.src_fd = src,
		.prefix_fd = -1,
		.expect_size = 123456789012ULL,
	};
	static struct rfs_msg m;
	char buf[32] = "";
	int base = open_fds();

	check(rfs_wire_send_job(sv[0], 7, &j) == 0, "send JOB");
	check(rfs_wire_recv(sv[1], &m) == 0, "receive JOB");
	check(m.type == RFS_MSG_JOB && m.job_id == 7, "JOB type and id");
	check(!strcmp(m.source_rel, "sub/dem.tif") &&
	      !strcmp(m.canonical, "@focal=3,mean,square") &&
	      !strcmp(m.out_name, "0123.tif"), "JOB strings");
	check(m.src.dev == 1 && m.src.ino == 2 && m.src.size == 3 &&
	      m.src.mtime_ns == -4, "JOB identity");
	check(m.src_fd >= 0 && m.src_fd != src && same_file(m.src_fd, src),
	      "the source descriptor is the same open file");
	check(pread(m.src_fd, buf, sizeof(buf) - 1, 0) == 12 &&
	      !strcmp(buf, "source bytes"), "its bytes");
	check(fcntl(m.src_fd, F_GETFD) == FD_CLOEXEC, "received close-on-exec");
	check(m.prefix_fd == -1 && !(m.flags & RFS_WIRE_JOB_PREFIX) &&
	      m.prefix_len == 0, "no prefix descriptor");
	check(m.expect_size == 123456789012ULL, "the described size");
	check(open_fds() == base + 1, "one descriptor received");
	rfs_wire_close_fds(&m);
	check(open_fds() == base && m.src_fd == -1, "closed by close_fds");

	j.prefix_fd = pre;
	check(rfs_wire_send_job(sv[0], 8, &j) == -EINVAL,
	      "a prefix of length 0 is not sent");
	j.prefix_len = (uint32_t)strlen(j.canonical);
	check(rfs_wire_send_job(sv[0], 8, &j) == -EINVAL,
	      "a prefix as long as the chain is not sent");
	j.prefix_len = 8;
	check(rfs_wire_send_job(sv[0], 8, &j) == 0, "send JOB with prefix");
	check(rfs_wire_recv(sv[1], &m) == 0, "receive JOB with prefix");
	check((m.flags & RFS_WIRE_JOB_PREFIX) && same_file(m.src_fd, src) &&
	      same_file(m.prefix_fd, pre) && m.prefix_len == 8,
	      "both descriptors, in order, and the prefix's length");
	rfs_wire_close_fds(&m);
	check(open_fds() == base, "both closed");

	j.src_fd = -1;
	check(rfs_wire_send_job(sv[0], 9, &j) == -EINVAL,
	      "a JOB without a source is not sent");
	close(src);
	close(pre);
}

static void expect_eproto(int sv[2], const char *what);

static void test_describe(int sv[2])
{
	int src = temp_file("source bytes");
	struct rfs_src_id id = { 5, 6, 7, -8 };
	static struct rfs_msg m;
	static unsigned char blob[RFS_WIRE_MAX];
	int base = open_fds();

	check(rfs_wire_send_describe(sv[0], 11, &id, "a/b.tif",
				     "@hillshade=315,45,z=1", src) == 0,
	      "send DESCRIBE");
	check(rfs_wire_recv(sv[1], &m) == 0 && m.type == RFS_MSG_DESCRIBE &&
	      m.job_id == 11 && !strcmp(m.source_rel, "a/b.tif") &&
	      !strcmp(m.canonical, "@hillshade=315,45,z=1") &&
	      m.src.dev == 5 && m.src.mtime_ns == -8 &&
	      same_file(m.src_fd, src) && m.prefix_fd == -1,
	      "receive DESCRIBE: identity, strings, the pinned source");
	rfs_wire_close_fds(&m);
	check(open_fds() == base, "closed");
	check(rfs_wire_send_describe(sv[0], 11, &id, "a", "b", -1) == -EINVAL,
	      "a DESCRIBE without a source is not sent");
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 7);
	const size_t most = RFS_WIRE_MAX - 8;
	check(rfs_wire_send_described(sv[1], 11, 987654321, blob, most) == 0 &&
	      rfs_wire_recv(sv[0], &m) == 0 && m.type == RFS_MSG_DESCRIBED &&
	      m.size == 987654321 && m.blob_len == most &&
	      memcmp(m.blob, blob, most) == 0,
	      "DESCRIBED with the largest layout");
	check(rfs_wire_send_described(sv[1], 11, 1, blob, most + 1) ==
	      -EMSGSIZE, "a layout too large is not sent");
	check(rfs_wire_send_described(sv[1], 11, 1, blob, 0) == -EINVAL,
	      "an empty layout is not sent");
	/* malformed: no fd, two fds, an empty DESCRIBED, an fd on one */
	char p[64] = { 0 };
	memcpy(p + sizeof(struct rfs_src_id) + 8, "a\0b", 4);
	size_t n = sizeof(struct rfs_src_id) + 8 + 4;
	rfs_wire_send_raw(sv[0], RFS_MSG_DESCRIBE, 1, p, n, NULL, 0);
	expect_eproto(sv, "DESCRIBE without its source");
	int two[2] = { src, src };
	rfs_wire_send_raw(sv[0], RFS_MSG_DESCRIBE, 1, p, n, two, 2);
	expect_eproto(sv, "DESCRIBE with two descriptors");
	p[sizeof(struct rfs_src_id)] = 1;
	rfs_wire_send_raw(sv[0], RFS_MSG_DESCRIBE, 1, p, n, &src, 1);
	expect_eproto(sv, "DESCRIBE with a flag");
	rfs_wire_send_raw(sv[0], RFS_MSG_DESCRIBED, 1, p, 8, NULL, 0);
	expect_eproto(sv, "DESCRIBED without a layout");
	rfs_wire_send_raw(sv[0], RFS_MSG_DESCRIBED, 1, p, 9, &src, 1);
	expect_eproto(sv, "DESCRIBED with a descriptor");
	check(open_fds() == base, "every descriptor closed");
	close(src);
}

static void test_others(int sv[2])
{
	static struct rfs_msg m;

	check(rfs_wire_send_progress(sv[1], 3, 0.25) == 0 &&
	      rfs_wire_recv(sv[0], &m) == 0 && m.type == RFS_MSG_PROGRESS &&
	      m.progress == 0.25, "PROGRESS");
	check(rfs_wire_send_done(sv[1], 3, 12345, 0xfeedULL) == 0 &&
	      rfs_wire_recv(sv[0], &m) == 0 && m.type == RFS_MSG_DONE &&
	      m.size == 12345 && m.checksum == 0xfeed, "DONE");
	check(rfs_wire_send_failed(sv[1], 3, -20201, RFS_WIRE_FAILED_EXIT,
				   "no space") == 0 &&
	      rfs_wire_recv(sv[0], &m) == 0 && m.type == RFS_MSG_FAILED &&
	      m.code == -20201 && m.flags == RFS_WIRE_FAILED_EXIT &&
	      !strcmp(m.message, "no space"), "FAILED with flags");
	check(rfs_wire_send_cancel(sv[0], 4) == 0 &&
	      rfs_wire_recv(sv[1], &m) == 0 && m.type == RFS_MSG_CANCEL &&
	      m.job_id == 4 && m.src_fd == -1, "CANCEL");
}

/* sendmsg of raw bytes with nfds copies of fd (any number). */
static void send_fds(int s, const void *buf, size_t len, int fd, int nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		for (int i = 0; i < nfds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof(int));
	}
	if (sendmsg(s, &mh, 0) < 0) {
		perror("sendmsg");
		exit(2);
	}
}

/* A JOB payload: identity, flags, prefix length (1 with the PREFIX flag,
 * else 0), described size, then the strings as given (len bytes, NULs
 * included or not). */
static size_t job_payload(char *buf, uint32_t flags, const char *strs,
			  size_t len)
{
	struct rfs_src_id id = { 1, 2, 3, 4 };
	uint32_t f[2] = { flags, (flags & RFS_WIRE_JOB_PREFIX) ? 1 : 0 };
	uint64_t size = 0;

	memcpy(buf, &id, sizeof(id));
	memcpy(buf + sizeof(id), f, sizeof(f));
	memcpy(buf + sizeof(id) + sizeof(f), &size, sizeof(size));
	memcpy(buf + sizeof(id) + sizeof(f) + sizeof(size), strs, len);
	return sizeof(id) + sizeof(f) + sizeof(size) + len;
}

static void expect_eproto(int sv[2], const char *what)
{
	static struct rfs_msg m;
	int rc = rfs_wire_recv(sv[1], &m);

	check(rc == -EPROTO, "%s: -EPROTO (got %d)", what, rc);
	check(m.src_fd == -1 && m.prefix_fd == -1, "%s: no descriptor kept",
	      what);
}

static void test_malformed(int sv[2])
{
	int f = temp_file("x");
	const int base = open_fds();
	char p[256];
	size_t n;

	/* a JOB with no descriptor */
	n = job_payload(p, 0, "a\0b\0c", 6);
	check(rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, NULL, 0) == 0,
	      "send JOB without fds");
	expect_eproto(sv, "JOB without its source descriptor");

	/* a JOB that says "prefix" with only one descriptor */
	n = job_payload(p, RFS_WIRE_JOB_PREFIX, "a\0b\0c", 6);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB with PREFIX and 1 fd");
	check(open_fds() == base, "its descriptor was closed");

	/* two descriptors without the flag */
	int two[2] = { f, f };
	n = job_payload(p, 0, "a\0b\0c", 6);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, two, 2);
	expect_eproto(sv, "JOB with 2 fds and no PREFIX");
	check(open_fds() == base, "both descriptors were closed");

	/* five descriptors (more than any message takes) */
	struct rfs_wire_hdr h = { RFS_MSG_JOB, 0, 1 };
	char raw[512];
	n = job_payload(p, RFS_WIRE_JOB_PREFIX, "a\0b\0c", 6);
	h.len = (uint32_t)n;
	memcpy(raw, &h, sizeof(h));
	memcpy(raw + sizeof(h), p, n);
	send_fds(sv[0], raw, sizeof(h) + n, f, 5);
	expect_eproto(sv, "JOB with 5 fds");
	check(open_fds() == base, "all five closed");

	/* a string without its NUL */
	n = job_payload(p, 0, "a\0b\0c", 5);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB whose last string has no NUL");
	check(open_fds() == base, "closed");

	/* bytes after the three strings */
	n = job_payload(p, 0, "a\0b\0c\0d", 8);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB with trailing bytes");
	check(open_fds() == base, "closed");

	/* an unknown JOB flag */
	n = job_payload(p, 4, "a\0b\0c", 6);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB with an unknown flag");

	/* a JOB shorter than its fixed part */
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, "ab", 2, &f, 1);
	expect_eproto(sv, "JOB of 2 bytes");
	check(open_fds() == base, "closed");

	/* descriptors on messages that take none */
	double d = 0.5;
	rfs_wire_send_raw(sv[0], RFS_MSG_PROGRESS, 1, &d, sizeof(d), &f, 1);
	expect_eproto(sv, "PROGRESS with an fd");
	rfs_wire_send_raw(sv[0], RFS_MSG_CANCEL, 1, NULL, 0, &f, 1);
	expect_eproto(sv, "CANCEL with an fd");
	check(open_fds() == base, "closed");

	/* wrong lengths, types, flags */
	rfs_wire_send_raw(sv[0], RFS_MSG_PROGRESS, 1, &d, 4, NULL, 0);
	expect_eproto(sv, "PROGRESS of 4 bytes");
	rfs_wire_send_raw(sv[0], RFS_MSG_CANCEL, 1, "x", 1, NULL, 0);
	expect_eproto(sv, "CANCEL with a payload");
	rfs_wire_send_raw(sv[0], 99, 1, NULL, 0, NULL, 0);
	expect_eproto(sv, "unknown type");
	char fl[16] = { 0 };
	uint32_t bad = 2;
	memcpy(fl + 4, &bad, 4);
	fl[8] = 'x';
	rfs_wire_send_raw(sv[0], RFS_MSG_FAILED, 1, fl, 10, NULL, 0);
	expect_eproto(sv, "FAILED with an unknown flag");
	h.type = RFS_MSG_DONE;
	h.len = 100; /* says 100, carries 16 */
	memcpy(raw, &h, sizeof(h));
	memset(raw + sizeof(h), 0, 16);
	send_fds(sv[0], raw, sizeof(h) + 16, f, 1);
	expect_eproto(sv, "a header whose length lies");
	check(open_fds() == base, "closed");
	send_fds(sv[0], "abc", 3, f, 0);
	expect_eproto(sv, "a message shorter than the header");
	close(f);
}

/* More ways a peer can lie, and the channel after them. */
static void test_malformed_more(int sv[2])
{
	int f = temp_file("y");
	const int base = open_fds();
	static char big[sizeof(struct rfs_wire_hdr) + RFS_WIRE_MAX + 64];
	static struct rfs_msg m;
	char p[256];
	size_t n;

	/* larger than any message: cut by the kernel (MSG_TRUNC) */
	struct rfs_wire_hdr h = { RFS_MSG_FAILED, RFS_WIRE_MAX + 64, 1 };
	memset(big, 'z', sizeof(big));
	memcpy(big, &h, sizeof(h));
	send_fds(sv[0], big, sizeof(big), f, 1);
	expect_eproto(sv, "a message longer than RFS_WIRE_MAX");
	check(open_fds() == base, "its descriptor was closed");

	/* an empty datagram that carries a descriptor */
	send_fds(sv[0], "", 0, f, 1);
	expect_eproto(sv, "an empty message with an fd");
	check(open_fds() == base, "closed");

	/* a JOB with a prefix length but no prefix */
	n = job_payload(p, 0, "a\0b\0c", 6);
	p[sizeof(struct rfs_src_id) + 4] = 1;
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB with a prefix length and no prefix");
	check(open_fds() == base, "closed");

	/* a prefix as long as the chain ("b") */
	int two[2] = { f, f };
	n = job_payload(p, RFS_WIRE_JOB_PREFIX, "a\0b\0c", 6);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, two, 2);
	expect_eproto(sv, "JOB whose prefix is the whole chain");
	check(open_fds() == base, "closed");

	/* a JOB with only two of its three strings */
	n = job_payload(p, 0, "a\0b", 4);
	rfs_wire_send_raw(sv[0], RFS_MSG_JOB, 1, p, n, &f, 1);
	expect_eproto(sv, "JOB with two strings");
	check(open_fds() == base, "closed");

	/* FAILED: too short, message without its NUL, bytes after it */
	char fl[32] = { 0 };
	rfs_wire_send_raw(sv[0], RFS_MSG_FAILED, 1, fl, 8, NULL, 0);
	expect_eproto(sv, "FAILED without a message");
	memcpy(fl + 8, "boom", 4);
	rfs_wire_send_raw(sv[0], RFS_MSG_FAILED, 1, fl, 12, NULL, 0);
	expect_eproto(sv, "FAILED whose message has no NUL");
	memcpy(fl + 8, "boom\0x", 6);
	rfs_wire_send_raw(sv[0], RFS_MSG_FAILED, 1, fl, 14, NULL, 0);
	expect_eproto(sv, "FAILED with bytes after its message");

	/* DONE of the wrong length; PROGRESS that says more than it has */
	rfs_wire_send_raw(sv[0], RFS_MSG_DONE, 1, fl, 15, NULL, 0);
	expect_eproto(sv, "DONE of 15 bytes");
	rfs_wire_send_raw(sv[0], RFS_MSG_DONE, 1, fl, 17, NULL, 0);
	expect_eproto(sv, "DONE of 17 bytes");

	/* after all that, the channel still carries good messages */
	check(rfs_wire_send_progress(sv[1], 9, 0.5) == 0 &&
	      rfs_wire_recv(sv[0], &m) == 0 && m.type == RFS_MSG_PROGRESS &&
	      m.job_id == 9 && m.progress == 0.5,
	      "a good message after the bad ones");
	check(open_fds() == base, "no descriptor left over");
	close(f);
}

int main(void)
{
	int sv[2];
	static struct rfs_msg m;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		return 2;
	}
	test_job_roundtrip(sv);
	test_describe(sv);
	test_others(sv);
	test_malformed(sv);
	test_malformed_more(sv);
	close(sv[0]);
	check(rfs_wire_recv(sv[1], &m) == -EPIPE, "EOF is -EPIPE");
	close(sv[1]);
	return check_report();
}
