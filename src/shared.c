/* shared.c - the shared tier's directory (shared.h): find, fetch,
 * publish, claims, gc.  Plain files only; the rules are in shared.h.
 *
 * Design notes:
 *  1. Nothing here keeps state between calls but the directory's
 *     descriptors and names, so any thread may call anything, and two
 *     processes (nodes) meet only through the directory: renames (atomic
 *     within one filesystem, NFS included), O_CREAT|O_EXCL (atomic on
 *     NFSv3 and later) and mtimes.
 *  2. Order of publication: object, then sidecar, each write-to-tmp,
 *     fsync, rename; then fsync of the shard directory.  Order of
 *     removal (gc, corruption): sidecar first.  So a sidecar that is
 *     there names an object that is complete, and a reader that opened
 *     the object keeps its inode (POSIX; an NFS client that holds it open
 *     keeps it too, as .nfsXXXX).  A reader on another NFS client may see
 *     ESTALE mid-copy when gc removes an object under it: the fetch fails
 *     (-ENOENT) and the output is computed, never served short.
 *  3. Everything read from DIR is checked before it is believed: a
 *     sidecar must parse and name the key material asked for; the object
 *     must have the sidecar's size and XXH3-64, checked while it is
 *     copied.  What fails is moved aside (sidecar to corrupt/), logged
 *     with RFS-E304, and reads as absent from then on.
 */
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/json.h"
#include "rasterfs/log.h"
#include "rasterfs/shared.h"

#define COPY_CHUNK (1u << 20)
#define SIDECAR_MAX (64u << 10)
#define DAY (24 * 3600)
#define RUNS_AGE (30 * DAY)

static const char *const subdirs[] = { "objects", "claims", "tmp", "corrupt",
				       "runs" };

struct rfs_shared {
	char *dir;                 /* absolute */
	int fd;                    /* DIR */
	int objects_fd, claims_fd, tmp_fd, corrupt_fd;
	mode_t mode;               /* of directories made */
	char host[RFS_SHARED_HOST_MAX];
	atomic_uint seq;           /* names of temporary files */
};

struct rfs_shared_claim {
	rfs_shared *sh;
	char name[RFS_KEY_HEX];
	int fd;
	uint64_t ino;
};

/* ---- small helpers ---------------------------------------------------- */

static int64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Write all of buf, again after EINTR.  Returns 0 or -errno. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read a small file at dfd/name (at most cap - 1 bytes) into a malloc'ed
 * NUL-terminated string.  Returns 0 and *out, -EFBIG (larger), -errno. */
static int read_small(int dfd, const char *name, size_t cap, char **out,
		      struct stat *st)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf = NULL;
	size_t len = 0;
	int rc = 0;

	*out = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (!(buf = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			rc = -EFBIG;
			goto out;
		}
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

static void obj_names(const rfs_key *k, char shard[3], char tif[48],
		      char json[48])
{
	char hex[RFS_KEY_HEX];

	rfs_key_hex(k, hex);
	snprintf(shard, 3, "%.2s", hex);
	snprintf(tif, 48, "%.2s/%s.tif", hex, hex);
	snprintf(json, 48, "%.2s/%s.json", hex, hex);
}

/* A temporary name in tmp/ that no other writer (node, process, call)
 * uses. */
static void tmp_name(rfs_shared *sh, const rfs_key *k, const char *ext,
		     char *buf, size_t len)
{
	char hex[RFS_KEY_HEX];

	rfs_key_hex(k, hex);
	snprintf(buf, len, "%s.%.64s.%ld.%u.%s", hex, sh->host, (long)getpid(),
		 atomic_fetch_add(&sh->seq, 1), ext);
}

/* Note 3: move the sidecar json (objects/<xx>/<hex>.json) aside, so
 * nobody trusts the object again, and log why. */
static void quarantine(rfs_shared *sh, const rfs_key *k, const char *why)
{
	char shard[3], tif[48], json[48], hex[RFS_KEY_HEX], aside[NAME_MAX];

	obj_names(k, shard, tif, json);
	rfs_key_hex(k, hex);
	snprintf(aside, sizeof(aside), "%s.%.64s.%ld.%u.json", hex, sh->host,
		 (long)getpid(), atomic_fetch_add(&sh->seq, 1));
	if (renameat(sh->objects_fd, json, sh->corrupt_fd, aside) < 0 &&
	    errno != ENOENT)
		rfs_log(LOG_WARNING, "shared tier %s: cannot move the sidecar "
			"of %s aside: %s", sh->dir, hex, strerror(errno));
	rfs_log(LOG_ERR, "shared tier %s: object %s: %s %s: %s; not served "
		"(its sidecar is now corrupt/%s)", sh->dir, hex,
		rfs_err_name(-RFS_E_SHARED_CORRUPT),
		rfs_strerror(-RFS_E_SHARED_CORRUPT), why, aside);
}

/* ---- open, close ------------------------------------------------------ */

static const char format_text[] = "rasterfs-shared 1\n";

/* Check DIR/FORMAT, or write it into a directory that holds nothing
 * else of ours' shape. */
static int check_format(rfs_shared *sh)
{
	struct stat st;
	char *text = NULL, tmp[NAME_MAX];
	int rc = read_small(sh->fd, "FORMAT", 256, &text, &st);

	if (rc == 0) {
		rc = strcmp(text, format_text) ? -RFS_E_SHARED : 0;
		if (rc)
			rfs_log(LOG_ERR, "shared tier %s: RFS-E305 FORMAT says "
				"\"%.*s\", "
				"this rasterfs writes \"%.*s\"; use another "
				"directory", sh->dir,
				(int)strcspn(text, "\n"), text,
				(int)strcspn(format_text, "\n"), format_text);
		free(text);
		return rc;
	}
	if (rc != -ENOENT)
		return rc;
	/* A directory that has files but no FORMAT is someone else's. */
	DIR *d = fdopendir(dup(sh->fd));
	struct dirent *de;
	int foreign = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int ours = de->d_name[0] == '.';
		for (size_t i = 0; i < sizeof(subdirs) / sizeof(*subdirs); i++)
			ours |= !strcmp(de->d_name, subdirs[i]);
		ours |= !strncmp(de->d_name, "FORMAT.", 7);
		foreign |= !ours;
	}
	closedir(d);
	if (foreign) {
		rfs_log(LOG_ERR, "shared tier %s: RFS-E305 the directory holds "
			"files "
			"but no FORMAT: refusing to use someone else's "
			"directory as a shared tier", sh->dir);
		return -RFS_E_SHARED;
	}
	/* Several nodes may start at once: each renames its own temp. */
	snprintf(tmp, sizeof(tmp), "FORMAT.%.64s.%ld", sh->host, (long)getpid());
	int fd = openat(sh->fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0644);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, format_text, sizeof(format_text) - 1);
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (!rc && renameat(sh->fd, tmp, sh->fd, "FORMAT") < 0)
		rc = -errno;
	if (rc)
		unlinkat(sh->fd, tmp, 0);
	else
		fsync(sh->fd);
	return rc;
}

/* mkdir -p with mode. */
static int make_dirs(const char *dir, mode_t mode)
{
	char *p = strdup(dir);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

int rfs_shared_open(const char *dir, mode_t mode, rfs_shared **out)
{
	rfs_shared *sh = calloc(1, sizeof(*sh));
	char abs[PATH_MAX];
	int rc;

	if (!sh)
		return -ENOMEM;
	sh->fd = sh->objects_fd = sh->claims_fd = sh->tmp_fd =
		sh->corrupt_fd = -1;
	sh->mode = mode;
	if (gethostname(sh->host, sizeof(sh->host) - 1) < 0 || !sh->host[0])
		snprintf(sh->host, sizeof(sh->host), "unknown");
	/* a host name goes into file names */
	for (char *c = sh->host; *c; c++)
		if (*c == '/' || *c == '.' || *c <= ' ')
			*c = '_';
	if ((rc = make_dirs(dir, mode)) < 0)
		goto fail;
	if (!realpath(dir, abs) || !(sh->dir = strdup(abs))) {
		rc = -errno;
		goto fail;
	}
	if ((sh->fd = open(sh->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = check_format(sh)) < 0)
		goto fail;
	int *fds[] = { &sh->objects_fd, &sh->claims_fd, &sh->tmp_fd,
		       &sh->corrupt_fd, NULL };
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(*subdirs); i++) {
		if (mkdirat(sh->fd, subdirs[i], mode) < 0 && errno != EEXIST) {
			rc = -errno;
			goto fail;
		}
		if (i < 4 && (*fds[i] = openat(sh->fd, subdirs[i],
					       O_RDONLY | O_DIRECTORY |
					       O_CLOEXEC)) < 0) {
			rc = -errno;
			goto fail;
		}
	}
	*out = sh;
	return 0;
fail:
	if (rc != -RFS_E_SHARED)
		rfs_log(LOG_ERR, "shared tier %s: RFS-E305 %s", dir,
			strerror(-rc));
	rfs_shared_close(sh);
	return rc;
}

void rfs_shared_close(rfs_shared *sh)
{
	if (!sh)
		return;
	int fds[] = { sh->fd, sh->objects_fd, sh->claims_fd, sh->tmp_fd,
		      sh->corrupt_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(*fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(sh->dir);
	free(sh);
}

const char *rfs_shared_dir(const rfs_shared *sh)
{
	return sh->dir;
}

const char *rfs_shared_host(const rfs_shared *sh)
{
	return sh->host;
}

void rfs_shared_meta_init(struct rfs_shared_meta *m,
			  const unsigned char content[RFS_PKEY_CONTENT],
			  const char *versions, const char *canonical)
{
	memset(m, 0, sizeof(*m));
	memcpy(m->content, content, RFS_PKEY_CONTENT);
	snprintf(m->versions, sizeof(m->versions), "%s", versions);
	snprintf(m->canonical, sizeof(m->canonical), "%s", canonical);
	m->format_version = RFS_FORMAT_VERSION;
	rfs_pkey_make(&m->pkey, content, versions, canonical);
}

/* ---- sidecars --------------------------------------------------------- */

static char *sidecar_text(const struct rfs_shared_meta *m)
{
	char hex[RFS_KEY_HEX], chex[RFS_PKEY_CONTENT_HEX], sum[24];
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct rfs_json j;

	if (!f)
		return NULL;
	rfs_key_hex(&m->pkey, hex);
	rfs_pkey_content_hex(m->content, chex);
	snprintf(sum, sizeof(sum), "%016" PRIx64, m->checksum);
	rfs_json_init(&j, f);
	rfs_json_object(&j);
	rfs_json_key(&j, "format");
	rfs_json_string(&j, "rasterfs-shared-object");
	rfs_json_key(&j, "version");
	rfs_json_u64(&j, RFS_SHARED_FORMAT);
	rfs_json_key(&j, "pkey");
	rfs_json_string(&j, hex);
	rfs_json_key(&j, "canonical");
	rfs_json_string(&j, m->canonical);
	rfs_json_key(&j, "content");
	rfs_json_string(&j, chex);
	rfs_json_key(&j, "versions");
	rfs_json_string(&j, m->versions);
	rfs_json_key(&j, "format_version");
	rfs_json_u64(&j, m->format_version);
	rfs_json_key(&j, "size");
	rfs_json_u64(&j, m->size);
	rfs_json_key(&j, "xxh3_64");
	rfs_json_string(&j, sum);
	rfs_json_key(&j, "created");
	rfs_json_time(&j, (time_t)(m->created_ns / 1000000000LL));
	rfs_json_key(&j, "created_ns");
	rfs_json_i64(&j, m->created_ns);
	rfs_json_key(&j, "host");
	rfs_json_string(&j, m->host);
	rfs_json_key(&j, "pid");
	rfs_json_i64(&j, m->pid);
	rfs_json_key(&j, "source");
	rfs_json_string(&j, m->source);
	rfs_json_key(&j, "rasterfs");
	rfs_json_string(&j, RFS_VERSION);
	rfs_json_end(&j);
	rfs_json_newline(&j);
	if (ferror(f)) {
		fclose(f);
		free(text);
		return NULL;
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int get_u64(const char *text, const char *key, uint64_t *v)
{
	char buf[32], *end;

	if (rfs_json_flat_get(text, key, buf, sizeof(buf)) < 0 || !buf[0] ||
	    buf[0] == '-')
		return -1;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return errno || *end ? -1 : 0;
}

/* Parse a sidecar into out (all fields).  Returns 0, or -1 when it is not
 * a sidecar of this version. */
static int sidecar_parse(const char *text, struct rfs_shared_meta *out)
{
	char buf[64], *end;
	uint64_t v;

	memset(out, 0, sizeof(*out));
	if (rfs_json_flat_get(text, "format", buf, sizeof(buf)) < 0 ||
	    strcmp(buf, "rasterfs-shared-object") ||
	    get_u64(text, "version", &v) || v != RFS_SHARED_FORMAT)
		return -1;
	if (rfs_json_flat_get(text, "pkey", buf, sizeof(buf)) < 0 ||
	    rfs_key_parse(buf, &out->pkey) < 0 ||
	    rfs_json_flat_get(text, "content", buf, sizeof(buf)) < 0 ||
	    rfs_pkey_content_parse(buf, out->content) < 0 ||
	    rfs_json_flat_get(text, "canonical", out->canonical,
			      sizeof(out->canonical)) < 0 ||
	    rfs_json_flat_get(text, "versions", out->versions,
			      sizeof(out->versions)) < 0 ||
	    get_u64(text, "format_version", &out->format_version) ||
	    get_u64(text, "size", &out->size) ||
	    rfs_json_flat_get(text, "xxh3_64", buf, sizeof(buf)) < 0 ||
	    strlen(buf) != 16)
		return -1;
	errno = 0;
	out->checksum = strtoull(buf, &end, 16);
	if (errno || *end)
		return -1;
	if (rfs_json_flat_get(text, "created_ns", buf, sizeof(buf)) == 0)
		out->created_ns = strtoll(buf, NULL, 10);
	if (rfs_json_flat_get(text, "pid", buf, sizeof(buf)) == 0)
		out->pid = strtol(buf, NULL, 10);
	/* for humans: a long one is cut, not refused */
	if (rfs_json_flat_get(text, "host", out->host, sizeof(out->host)) < 0)
		out->host[0] = '\0';
	if (rfs_json_flat_get(text, "source", out->source,
			      sizeof(out->source)) < 0)
		out->source[0] = '\0';
	return 0;
}

int rfs_shared_find(rfs_shared *sh, struct rfs_shared_meta *m)
{
	char shard[3], tif[48], json[48], *text = NULL;
	struct rfs_shared_meta got;
	struct stat st, ost;
	int rc;

	obj_names(&m->pkey, shard, tif, json);
	rc = read_small(sh->objects_fd, json, SIDECAR_MAX, &text, &st);
	if (rc == -ENOENT || rc == -ENOTDIR || rc == -ESTALE)
		return -ENOENT;
	if (rc < 0 && rc != -EFBIG && rc != -EINVAL)
		return rc;
	if (rc < 0 || sidecar_parse(text, &got) < 0 ||
	    memcmp(got.pkey.b, m->pkey.b, sizeof(m->pkey.b))) {
		free(text);
		quarantine(sh, &m->pkey, "its sidecar is not one rasterfs "
			   "wrote for this key");
		return -RFS_E_SHARED_CORRUPT;
	}
	free(text);
	/* the key material, not only its hash (a collision is a miss) */
	if (memcmp(got.content, m->content, RFS_PKEY_CONTENT) ||
	    strcmp(got.versions, m->versions) ||
	    strcmp(got.canonical, m->canonical) ||
	    got.format_version != m->format_version) {
		rfs_log(LOG_WARNING, "shared tier %s: %s names other key "
			"material (%s%s, %s): a hash collision, not served",
			sh->dir, json, got.source, got.canonical,
			got.versions);
		return -ENOENT;
	}
	if (fstatat(sh->objects_fd, tif, &ost, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(ost.st_mode) || (uint64_t)ost.st_size != got.size) {
		char why[96];
		snprintf(why, sizeof(why), "its object is %s",
			 errno == ENOENT ? "missing" :
			 "not a file of the sidecar's size");
		quarantine(sh, &m->pkey, why);
		return -RFS_E_SHARED_CORRUPT;
	}
	m->size = got.size;
	m->checksum = got.checksum;
	m->created_ns = got.created_ns;
	m->pid = got.pid;
	snprintf(m->host, sizeof(m->host), "%s", got.host);
	snprintf(m->source, sizeof(m->source), "%s", got.source);
	return 0;
}

/* Copy in_fd (from offset 0, exactly size bytes) to out_fd, hashing:
 * 0 and *sum; -EIO when in_fd is shorter or longer; -errno (on a read
 * error *rd is set). */
static int copy_hash(int in_fd, int out_fd, uint64_t size, uint64_t *sum,
		     int *rd)
{
	unsigned char *buf = malloc(COPY_CHUNK);
	XXH3_state_t state;
	uint64_t off = 0;
	int rc = 0;

	*rd = 0;
	if (!buf)
		return -ENOMEM;
	posix_fadvise(in_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	XXH3_INITSTATE(&state);
	XXH3_64bits_reset(&state);
	for (;;) {
		ssize_t n = pread(in_fd, buf, COPY_CHUNK, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			*rd = 1;
			break;
		}
		if (n == 0)
			break;
		if (off + (uint64_t)n > size) {
			rc = -EIO; /* longer than it should be */
			break;
		}
		XXH3_64bits_update(&state, buf, (size_t)n);
		if ((rc = write_all(out_fd, buf, (size_t)n)) < 0)
			break;
		off += (uint64_t)n;
	}
	if (!rc && off != size)
		rc = -EIO;
	*sum = XXH3_64bits_digest(&state);
	free(buf);
	return rc;
}

int rfs_shared_fetch(rfs_shared *sh, const struct rfs_shared_meta *m,
		     int dst_fd)
{
	char shard[3], tif[48], json[48], why[128];
	uint64_t sum;
	int fd, rc, rd;

	obj_names(&m->pkey, shard, tif, json);
	fd = openat(sh->objects_fd, tif, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT || errno == ESTALE ? -ENOENT : -errno;
	rc = copy_hash(fd, dst_fd, m->size, &sum, &rd);
	close(fd);
	if (rc == -ESTALE || (rd && rc == -ENOENT))
		return -ENOENT; /* removed under us (note 2) */
	if (rc == -EIO || (!rc && sum != m->checksum)) {
		snprintf(why, sizeof(why), rc ? "its object is not the "
			 "sidecar's size" : "its bytes have XXH3-64 %016"
			 PRIx64 ", the sidecar says %016" PRIx64, sum,
			 m->checksum);
		quarantine(sh, &m->pkey, why);
		return -RFS_E_SHARED_CORRUPT;
	}
	if (rc < 0)
		return rc;
	/* note that it was used: gc evicts the least recently used first */
	struct timespec t[2] = { { .tv_nsec = UTIME_NOW },
				 { .tv_nsec = UTIME_OMIT } };
	utimensat(sh->objects_fd, json, t, AT_SYMLINK_NOFOLLOW);
	return 0;
}

/* ---- publishing ------------------------------------------------------- */

/* Write text to tmp/<tmpname>, fsync; or copy src_fd (checked against
 * m).  Returns 0 or -errno (the temp removed). */
static int write_tmp(rfs_shared *sh, const char *tmpname, const char *text,
		     int src_fd, const struct rfs_shared_meta *m)
{
	int fd = openat(sh->tmp_fd, tmpname, O_WRONLY | O_CREAT | O_EXCL |
			O_CLOEXEC, 0644);
	int rc, rd;
	uint64_t sum;

	if (fd < 0)
		return -errno;
	if (text) {
		rc = write_all(fd, text, strlen(text));
	} else {
		rc = copy_hash(src_fd, fd, m->size, &sum, &rd);
		if (!rc && sum != m->checksum)
			rc = -EIO;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno; /* NFS reports write errors at close */
	if (rc)
		unlinkat(sh->tmp_fd, tmpname, 0);
	return rc;
}

int rfs_shared_publish(rfs_shared *sh, struct rfs_shared_meta *m, int src_fd,
		       int *published)
{
	char shard[3], tif[48], json[48], t1[NAME_MAX], t2[NAME_MAX];
	char *text = NULL;
	struct rfs_shared_meta have = *m;
	int rc;

	if (published)
		*published = 0;
	/* Already there, sound: nothing to do (a corrupt one was just moved
	 * aside by find, and is replaced below). */
	if ((rc = rfs_shared_find(sh, &have)) == 0)
		return 0;
	if (rc != -ENOENT && rc != -RFS_E_SHARED_CORRUPT)
		return rc;
	obj_names(&m->pkey, shard, tif, json);
	if (mkdirat(sh->objects_fd, shard, sh->mode) < 0 && errno != EEXIST)
		return -errno;
	m->created_ns = now_ns();
	m->pid = (long)getpid();
	snprintf(m->host, sizeof(m->host), "%s", sh->host);
	if (!(text = sidecar_text(m)))
		return -ENOMEM;
	tmp_name(sh, &m->pkey, "tif", t1, sizeof(t1));
	tmp_name(sh, &m->pkey, "json", t2, sizeof(t2));
	/* note 2: object, then sidecar, each complete before its rename */
	if ((rc = write_tmp(sh, t1, NULL, src_fd, m)) < 0)
		goto out;
	if (renameat(sh->tmp_fd, t1, sh->objects_fd, tif) < 0) {
		rc = -errno;
		unlinkat(sh->tmp_fd, t1, 0);
		goto out;
	}
	if ((rc = write_tmp(sh, t2, text, -1, NULL)) < 0)
		goto out;
	if (renameat(sh->tmp_fd, t2, sh->objects_fd, json) < 0) {
		rc = -errno;
		unlinkat(sh->tmp_fd, t2, 0);
		goto out;
	}
	int dfd = openat(sh->objects_fd, shard, O_RDONLY | O_DIRECTORY |
			 O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	if (published)
		*published = 1;
out:
	free(text);
	return rc;
}

/* ---- claims ----------------------------------------------------------- */

int rfs_shared_claim_take(rfs_shared *sh, const rfs_key *pkey,
			  unsigned lease, struct rfs_shared_claim **out)
{
	struct rfs_shared_claim *c = calloc(1, sizeof(*c));
	char text[RFS_SHARED_HOST_MAX + 128];
	struct stat st;
	int rc;

	if (!c)
		return -ENOMEM;
	c->sh = sh;
	rfs_key_hex(pkey, c->name);
	c->fd = openat(sh->claims_fd, c->name, O_WRONLY | O_CREAT | O_EXCL |
		       O_CLOEXEC | O_NOFOLLOW, 0644);
	if (c->fd < 0) {
		rc = -errno;
		free(c);
		return rc;
	}
	snprintf(text, sizeof(text), "host=%s\npid=%ld\nstarted=%lld\n"
		 "lease=%u\n", sh->host, (long)getpid(),
		 (long long)time(NULL), lease);
	/* fsynced: on NFS another client sees the text only once it is
	 * written back, and we keep the file open to renew it */
	if ((rc = write_all(c->fd, text, strlen(text))) < 0 ||
	    (fsync(c->fd) < 0 && (rc = -errno)) ||
	    (fstat(c->fd, &st) < 0 && (rc = -errno))) {
		unlinkat(sh->claims_fd, c->name, 0);
		close(c->fd);
		free(c);
		return rc;
	}
	c->ino = (uint64_t)st.st_ino;
	*out = c;
	return 0;
}

/* Is c's name still c's file? */
static int claim_is_ours(struct rfs_shared_claim *c)
{
	struct stat st;

	return fstatat(c->sh->claims_fd, c->name, &st, AT_SYMLINK_NOFOLLOW) ==
		       0 && (uint64_t)st.st_ino == c->ino;
}

int rfs_shared_claim_renew(struct rfs_shared_claim *c)
{
	if (futimens(c->fd, NULL) < 0)
		return -errno;
	return claim_is_ours(c) ? 0 : -ENOENT;
}

void rfs_shared_claim_release(struct rfs_shared_claim *c)
{
	if (!c)
		return;
	if (claim_is_ours(c))
		unlinkat(c->sh->claims_fd, c->name, 0);
	close(c->fd);
	free(c);
}

static int claim_read(int dfd, const char *name,
		      struct rfs_shared_claim_info *info)
{
	struct stat st;
	char *text = NULL;
	int rc = read_small(dfd, name, 1024, &text, &st);

	if (rc < 0)
		return rc == -ESTALE ? -ENOENT : rc;
	memset(info, 0, sizeof(*info));
	info->ino = (uint64_t)st.st_ino;
	info->mtime_ns = ts_ns(&st.st_mtim);
	/* a claim caught before its holder wrote it reads with defaults */
	info->lease = 60;
	snprintf(info->host, sizeof(info->host), "?");
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "host=", 5))
			snprintf(info->host, sizeof(info->host), "%s", line + 5);
		else if (!strncmp(line, "pid=", 4))
			info->pid = strtol(line + 4, NULL, 10);
		else if (!strncmp(line, "started=", 8))
			info->started = strtoll(line + 8, NULL, 10);
		else if (!strncmp(line, "lease=", 6))
			info->lease = (unsigned)strtoul(line + 6, NULL, 10);
	}
	if (info->lease < 1)
		info->lease = 1;
	if (info->lease > 3600)
		info->lease = 3600;
	free(text);
	return 0;
}

int rfs_shared_claim_peek(rfs_shared *sh, const rfs_key *pkey,
			  struct rfs_shared_claim_info *info)
{
	char name[RFS_KEY_HEX];

	rfs_key_hex(pkey, name);
	return claim_read(sh->claims_fd, name, info);
}

int rfs_shared_claim_takeover(rfs_shared *sh, const rfs_key *pkey,
			      const struct rfs_shared_claim_info *seen,
			      unsigned lease, struct rfs_shared_claim **out)
{
	char name[RFS_KEY_HEX], aside[NAME_MAX];
	struct stat st;
	int rc;

	rfs_key_hex(pkey, name);
	snprintf(aside, sizeof(aside), "%s.stale.%.64s.%ld.%u", name, sh->host,
		 (long)getpid(), atomic_fetch_add(&sh->seq, 1));
	/* Only one renamer wins; the others find no file. */
	if (renameat(sh->claims_fd, name, sh->claims_fd, aside) < 0)
		return errno == ENOENT ? -EAGAIN : -errno;
	if (fstatat(sh->claims_fd, aside, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -EAGAIN;
	if ((uint64_t)st.st_ino != seen->ino ||
	    ts_ns(&st.st_mtim) != seen->mtime_ns) {
		/* A new claim (or a renewal) came between the look and the
		 * rename: give it back, unless yet another claim is there. */
		if (linkat(sh->claims_fd, aside, sh->claims_fd, name, 0) < 0 &&
		    errno != EEXIST)
			rfs_log(LOG_WARNING, "shared tier %s: cannot give the "
				"claim of %s back: %s", sh->dir, name,
				strerror(errno));
		unlinkat(sh->claims_fd, aside, 0);
		return -EAGAIN;
	}
	unlinkat(sh->claims_fd, aside, 0);
	rfs_log(LOG_NOTICE, "shared tier %s: took over the claim of %s held "
		"by %s pid %ld, not renewed for its lease of %u s", sh->dir,
		name, seen->host, seen->pid, seen->lease);
	rc = rfs_shared_claim_take(sh, pkey, lease, out);
	return rc == -EEXIST ? -EAGAIN : rc;
}

/* ---- gc --------------------------------------------------------------- */

struct gc_obj {
	char shard[3];
	char hex[RFS_KEY_HEX];
	uint64_t size;
	int64_t used;              /* max(sidecar atime, mtime), ns */
};

static int by_used(const void *a, const void *b)
{
	const struct gc_obj *x = a, *y = b;

	return x->used < y->used ? -1 : x->used > y->used;
}

/* Remove files of dir (relative to dfd) untouched since before cutoff
 * (ns); directories too (recursively) when trees.  Counts them in *n. */
static void remove_old(int dfd, const char *dir, int64_t cutoff, int trees,
		       uint64_t *n)
{
	int fd = openat(dfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' && (!de->d_name[1] ||
		    (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    ts_ns(&st.st_mtim) >= cutoff)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (!trees)
				continue;
			remove_old(fd, de->d_name, INT64_MAX, 1, &(uint64_t){0});
			if (unlinkat(fd, de->d_name, AT_REMOVEDIR) == 0)
				(*n)++;
		} else if (unlinkat(fd, de->d_name, 0) == 0) {
			(*n)++;
		}
	}
	closedir(d);
}

int rfs_shared_gc(const char *dir, uint64_t limit, unsigned min_age,
		  struct rfs_shared_gc_report *rep)
{
	struct gc_obj *objs = NULL;
	size_t n = 0, cap = 0;
	int64_t now = now_ns(), young = now - (int64_t)min_age * 1000000000LL;
	rfs_shared *sh;
	int rc;

	memset(rep, 0, sizeof(*rep));
	{
		/* gc makes nothing: an existing tier only */
		struct stat st;
		char fmt[PATH_MAX + 16];
		snprintf(fmt, sizeof(fmt), "%s/FORMAT", dir);
		if (stat(fmt, &st) < 0) {
			rfs_log(LOG_ERR, "shared tier %s: RFS-E305 no FORMAT: "
				"not a shared tier (a mount or `rasterfs run` "
				"with shared= makes one)", dir);
			return -RFS_E_SHARED;
		}
	}
	if ((rc = rfs_shared_open(dir, 0700, &sh)) < 0)
		return rc;
	DIR *od = fdopendir(dup(sh->objects_fd));
	struct dirent *sd;
	if (!od) {
		rc = -errno;
		goto out;
	}
	while ((sd = readdir(od))) {
		if (strlen(sd->d_name) != 2 || sd->d_name[0] == '.')
			continue;
		int sfd = openat(sh->objects_fd, sd->d_name, O_RDONLY |
				 O_DIRECTORY | O_CLOEXEC);
		DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
		struct dirent *de;
		if (!d) {
			if (sfd >= 0)
				close(sfd);
			continue;
		}
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			struct stat st, ost;
			char other[NAME_MAX + 1];
			int is_json = l == 37 && !strcmp(de->d_name + 32, ".json");
			int is_tif = l == 36 && !strcmp(de->d_name + 32, ".tif");
			if (!is_json && !is_tif)
				continue;
			if (fstatat(sfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			snprintf(other, sizeof(other), "%.32s%s", de->d_name,
				 is_json ? ".tif" : ".json");
			int has_other = fstatat(sfd, other, &ost,
						AT_SYMLINK_NOFOLLOW) == 0;
			if (!has_other) {
				/* half of a publication (killed between
				 * its renames) or of a removal */
				if (ts_ns(&st.st_mtim) < young &&
				    unlinkat(sfd, de->d_name, 0) == 0)
					rep->orphans++;
				continue;
			}
			if (!is_json)
				continue;
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 256;
				struct gc_obj *no = realloc(objs, nc * sizeof(*no));
				if (!no) {
					rc = -ENOMEM;
					closedir(d);
					closedir(od);
					goto out;
				}
				objs = no;
				cap = nc;
			}
			struct gc_obj *o = &objs[n++];
			snprintf(o->shard, sizeof(o->shard), "%s", sd->d_name);
			snprintf(o->hex, sizeof(o->hex), "%.32s", de->d_name);
			o->size = (uint64_t)ost.st_size;
			o->used = ts_ns(&st.st_atim) > ts_ns(&st.st_mtim) ?
				  ts_ns(&st.st_atim) : ts_ns(&st.st_mtim);
			rep->objects++;
			rep->bytes += o->size;
		}
		closedir(d);
	}
	closedir(od);

	qsort(objs, n, sizeof(*objs), by_used);
	uint64_t total = rep->bytes;
	for (size_t i = 0; limit && i < n && total > limit; i++) {
		char p[64];
		if (objs[i].used >= young) {
			rep->young = n - i; /* the rest are younger still */
			break;
		}
		/* sidecar first (note 2) */
		snprintf(p, sizeof(p), "%s/%s.json", objs[i].shard, objs[i].hex);
		if (unlinkat(sh->objects_fd, p, 0) < 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s.tif", objs[i].shard, objs[i].hex);
		unlinkat(sh->objects_fd, p, 0);
		total -= objs[i].size;
		rep->removed++;
		rep->removed_bytes += objs[i].size;
	}
	/* stale leftovers: a publisher or claimer that died; a live holder
	 * renews its claim every lease/3 s (at most 20 min) */
	remove_old(sh->fd, "tmp", now - DAY * 1000000000LL, 0, &rep->tmp);
	remove_old(sh->fd, "claims", now - DAY * 1000000000LL, 0,
		   &rep->claims);
	remove_old(sh->fd, "corrupt", INT64_MAX, 0, &rep->corrupt);
	remove_old(sh->fd, "runs", now - (int64_t)RUNS_AGE * 1000000000LL, 1,
		   &rep->runs);
out:
	free(objs);
	rfs_shared_close(sh);
	return rc;
}
