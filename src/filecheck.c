/* filecheck.c - structure walkers for TIFF/BigTIFF and PNG outputs (see
 * filecheck.h).  TIFF 6.0 (Adobe, 1992) sections 2 and 15; BigTIFF as
 * libtiff documents it (version 43, 8-byte offsets and counts, 20-byte
 * entries); PNG (ISO/IEC 15948) section 5. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rasterfs/err.h"
#include "rasterfs/filecheck.h"

struct tiff {
	int fd;
	uint64_t size;
	int big;         /* BigTIFF */
	int be;          /* "MM": big-endian */
	unsigned trailer; /* bytes after each block (a COG's repeated last
	                     4 bytes), not in its byte count */
	char *msg;
	size_t len;
};

/* pread exactly n bytes at off, all inside the file. */
static int get(const struct tiff *t, uint64_t off, void *buf, size_t n)
{
	size_t got = 0;

	if (off > t->size || n > t->size - off)
		return -ERANGE;
	while (got < n) {
		ssize_t r = pread(t->fd, (char *)buf + got, n - got,
				  (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ERANGE; /* shrank under us */
		got += (size_t)r;
	}
	return 0;
}

static uint64_t num(const struct tiff *t, const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[t->be ? n - 1 - i : i] << (8 * i);
	return v;
}

static int bad(const struct tiff *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bad(const struct tiff *t, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(t->msg, t->len, "the output is not a whole TIFF (%s; the "
		 "file has %llu bytes)", what, (unsigned long long)t->size);
	return -RFS_E_PROCESS;
}

/* Bytes of one value of TIFF type type, or 0 for an unknown type. */
static unsigned type_size(unsigned type)
{
	static const unsigned char sz[] = {
		0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8,
	};
	return type < sizeof(sz) ? sz[type] : 0;
}

struct entry {
	unsigned tag, type;
	uint64_t count;
	uint64_t value_off;     /* where the values are */
};

/* Read values [0, count) of e (SHORT, LONG, LONG8 or IFD types) into
 * out (malloc'd). */
static int read_array(const struct tiff *t, const struct entry *e,
		      uint64_t **out)
{
	unsigned sz = type_size(e->type);
	unsigned char *raw;
	int rc;

	if (e->type != 3 && e->type != 4 && e->type != 16 && e->type != 13 &&
	    e->type != 18)
		return bad(t, "tag %u has type %u, not an offset or count",
			   e->tag, e->type);
	if (!(raw = malloc(e->count * sz)) ||
	    !(*out = malloc(e->count * sizeof(uint64_t)))) {
		free(raw);
		return -ENOMEM;
	}
	if ((rc = get(t, e->value_off, raw, e->count * sz)) < 0) {
		free(raw);
		free(*out);
		return rc == -ERANGE ? bad(t, "tag %u: values past the end "
					   "(%" PRIu64 ")", e->tag, e->value_off) : rc;
	}
	for (uint64_t i = 0; i < e->count; i++)
		(*out)[i] = num(t, raw + i * sz, (int)sz);
	free(raw);
	return 0;
}

/* Every block of one IFD inside the file. */
static int check_blocks(const struct tiff *t, const struct entry *offs,
			const struct entry *cnts)
{
	uint64_t *o = NULL, *c = NULL;
	int rc;

	if (!offs || !cnts)
		return bad(t, "an image directory without strip or tile "
			   "offsets");
	if (offs->count == 0)
		return bad(t, "an image directory with no block");
	if (offs->count != cnts->count)
		return bad(t, "%" PRIu64 " block offsets but %" PRIu64 " byte counts",
			   offs->count, cnts->count);
	if ((rc = read_array(t, offs, &o)) < 0)
		return rc;
	if ((rc = read_array(t, cnts, &c)) < 0)
		goto out;
	for (uint64_t i = 0; i < offs->count; i++) {
		if (o[i] == 0 && c[i] == 0)
			continue; /* sparse */
		if (o[i] > t->size || c[i] > t->size - o[i] ||
		    t->trailer > t->size - o[i] - c[i]) {
			rc = bad(t, "a block at %" PRIu64 " of %" PRIu64 " bytes "
				 "(and %u after it) ends past the end of the "
				 "file", o[i], c[i], t->trailer);
			goto out;
		}
	}
out:
	free(o);
	free(c);
	return rc;
}

/* One IFD at off: its entries and blocks; *next is the next IFD's offset. */
static int check_ifd(const struct tiff *t, uint64_t off, uint64_t *next)
{
	const unsigned cnt_sz = t->big ? 8 : 2, ent_sz = t->big ? 20 : 12;
	const unsigned inline_sz = t->big ? 8 : 4, next_sz = t->big ? 8 : 4;
	unsigned char hdr[8], *ents = NULL;
	struct entry offs = { 0 }, cnts = { 0 };
	int have_offs = 0, have_cnts = 0, rc;
	uint64_t n;

	if ((rc = get(t, off, hdr, cnt_sz)) < 0)
		return rc == -ERANGE ? bad(t, "an image directory at %llu is "
					   "past the end", (unsigned long long)off) : rc;
	n = num(t, hdr, (int)cnt_sz);
	if (n == 0 || n > (t->size - off) / ent_sz)
		return bad(t, "the image directory at %" PRIu64 " claims %" PRIu64 " entries",
			   off, n);
	if (!(ents = malloc(n * ent_sz + next_sz)))
		return -ENOMEM;
	if ((rc = get(t, off + cnt_sz, ents, n * ent_sz + next_sz)) < 0) {
		if (rc == -ERANGE)
			rc = bad(t, "the image directory at %" PRIu64 " (%" PRIu64 " entries) "
				 "ends past the end", off, n);
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *p = ents + i * ent_sz;
		struct entry e = {
			.tag = (unsigned)num(t, p, 2),
			.type = (unsigned)num(t, p + 2, 2),
			.count = num(t, p + 4, t->big ? 8 : 4),
		};
		unsigned sz = type_size(e.type);
		uint64_t vo = off + cnt_sz + i * ent_sz + (t->big ? 12 : 8);
		if (!sz) {
			rc = bad(t, "tag %u has an unknown type %u", e.tag,
				 e.type);
			goto out;
		}
		if (e.count > t->size / sz) {
			rc = bad(t, "tag %u claims %" PRIu64 " values", e.tag,
				 e.count);
			goto out;
		}
		e.value_off = e.count * sz <= inline_sz ? vo :
			      num(t, p + (t->big ? 12 : 8), (int)inline_sz);
		if (e.value_off > t->size ||
		    e.count * sz > t->size - e.value_off) {
			rc = bad(t, "the values of tag %u at %" PRIu64 " end past "
				 "the end", e.tag, e.value_off);
			goto out;
		}
		if (e.tag == 273 || e.tag == 324) {
			offs = e;
			have_offs = 1;
		} else if (e.tag == 279 || e.tag == 325) {
			cnts = e;
			have_cnts = 1;
		}
	}
	*next = num(t, ents + n * ent_sz, (int)next_sz);
	rc = check_blocks(t, have_offs ? &offs : NULL,
			  have_cnts ? &cnts : NULL);
out:
	free(ents);
	return rc;
}

/* GDAL's COG writes "ghost" text right after the header, and with
 * BLOCK_TRAILER=LAST_4_BYTES_REPEATED the last 4 bytes of each block again
 * after it, outside the block's byte count: those bytes belong to the
 * file too (a COG cut by 4 bytes still reads, but is not what was
 * written). */
static void ghost_area(struct tiff *t)
{
	static const char key[] = "GDAL_STRUCTURAL_METADATA_SIZE=";
	char text[1024];
	const uint64_t at = t->big ? 16 : 8;
	size_t n = sizeof(text) - 1;

	if (t->size <= at)
		return;
	if (t->size - at < n)
		n = (size_t)(t->size - at);
	if (get(t, at, text, n) < 0)
		return;
	text[n] = '\0';
	if (strncmp(text, key, sizeof(key) - 1) == 0 &&
	    strstr(text, "BLOCK_TRAILER=LAST_4_BYTES_REPEATED"))
		t->trailer = 4;
}

static int check_tiff(struct tiff *t, const unsigned char *h)
{
	uint64_t ifd, seen[64];
	unsigned nseen = 0, nifd = 0;
	int rc;

	t->be = h[0] == 'M';
	unsigned version = (unsigned)num(t, h + 2, 2);
	if (version == 42) {
		ifd = num(t, h + 4, 4);
	} else if (version == 43) {
		t->big = 1;
		if (num(t, h + 4, 2) != 8 || num(t, h + 6, 2) != 0)
			return bad(t, "a BigTIFF header with offsets of %llu "
				   "bytes", (unsigned long long)num(t, h + 4, 2));
		ifd = num(t, h + 8, 8);
	} else {
		return bad(t, "version %u is neither TIFF nor BigTIFF",
			   version);
	}
	if (ifd == 0)
		return bad(t, "no image directory");
	ghost_area(t);
	while (ifd) {
		/* a loop comes back to an offset seen: the last 64 and the
		 * count limit catch every loop */
		for (unsigned i = 0; i < nseen && i < 64; i++)
			if (seen[i] == ifd)
				return bad(t, "the image directories loop back "
					   "to %llu", (unsigned long long)ifd);
		if (++nifd > RFS_FILECHECK_MAX_IFDS)
			return bad(t, "more than %d image directories",
				   RFS_FILECHECK_MAX_IFDS);
		seen[nseen++ % 64] = ifd;
		if ((rc = check_ifd(t, ifd, &ifd)) < 0)
			return rc;
	}
	return 0;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int check_png(struct tiff *t)
{
	unsigned char h[8];
	uint64_t off = 8;
	int first = 1, rc;

	for (;;) {
		if (off == t->size)
			return bad(t, "the PNG ends at %llu without its IEND "
				   "chunk", (unsigned long long)off);
		if ((rc = get(t, off, h, 8)) < 0)
			return rc == -ERANGE ? bad(t, "a PNG chunk header at "
						   "%llu is cut", (unsigned long long)off)
					     : rc;
		uint32_t len = be32(h);
		if (len > 0x7fffffffu || 12 + (uint64_t)len > t->size - off)
			return bad(t, "the PNG chunk at %" PRIu64 " (%u bytes) ends "
				   "past the end", off, len);
		if (first && (memcmp(h + 4, "IHDR", 4) || len != 13))
			return bad(t, "the PNG does not start with IHDR");
		first = 0;
		off += 12 + (uint64_t)len;
		if (memcmp(h + 4, "IEND", 4) == 0) {
			if (off != t->size)
				return bad(t, "the PNG has %" PRIu64 " bytes after its "
					   "IEND at %" PRIu64, t->size - off, off);
			return 0;
		}
	}
}

int rfs_filecheck(int fd, uint64_t size, char *msg, size_t len)
{
	static const unsigned char png_sig[8] = {
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
	};
	struct tiff t = { .fd = fd, .size = size, .msg = msg, .len = len };
	unsigned char h[16];
	int rc = get(&t, 0, h, size < sizeof(h) ? (size_t)size : sizeof(h));

	if (rc < 0)
		return rc;
	if (size >= 8 && memcmp(h, png_sig, 8) == 0)
		return check_png(&t);
	if (size >= 8 && ((h[0] == 'I' && h[1] == 'I') ||
			  (h[0] == 'M' && h[1] == 'M'))) {
		if (size < 16 && h[2 + (h[0] == 'M')] == 43)
			return bad(&t, "a BigTIFF header cut at %llu bytes",
				   (unsigned long long)size);
		return check_tiff(&t, h);
	}
	snprintf(msg, len, "the output is neither a TIFF nor a PNG (%llu "
		 "bytes)", (unsigned long long)size);
	return -RFS_E_PROCESS;
}
