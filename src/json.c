/* json.c - a small JSON writer over a stdio stream (see json.h). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rasterfs/json.h"

void rfs_json_init(struct rfs_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->any[0] = 0;
	j->array[0] = 0;
}

/* Before a value: the separator an array needs between its values. */
static void value(struct rfs_json *j)
{
	if (j->depth > 0 && j->array[j->depth]) {
		if (j->any[j->depth])
			fputs(", ", j->f);
		j->any[j->depth] = 1;
	}
}

static void open_level(struct rfs_json *j, int array)
{
	value(j);
	fputc(array ? '[' : '{', j->f);
	assert(j->depth + 1 < RFS_JSON_DEPTH);
	j->depth++;
	j->any[j->depth] = 0;
	j->array[j->depth] = (unsigned char)array;
}

void rfs_json_object(struct rfs_json *j)
{
	open_level(j, 0);
}

void rfs_json_array(struct rfs_json *j)
{
	open_level(j, 1);
}

void rfs_json_end(struct rfs_json *j)
{
	assert(j->depth > 0);
	fputc(j->array[j->depth] ? ']' : '}', j->f);
	j->depth--;
}

void rfs_json_key(struct rfs_json *j, const char *key)
{
	assert(j->depth > 0 && !j->array[j->depth]);
	if (j->any[j->depth])
		fputs(", ", j->f);
	j->any[j->depth] = 1;
	rfs_json_string(j, key);
	fputs(": ", j->f);
}

/* A key is written through here too: value() adds nothing in an object. */
void rfs_json_string(struct rfs_json *j, const char *s)
{
	if (!s) {
		rfs_json_null(j);
		return;
	}
	value(j);
	fputc('"', j->f);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(j->f, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(j->f, "\\u%04x", *c);
		else
			fputc(*c, j->f);
	}
	fputc('"', j->f);
}

void rfs_json_u64(struct rfs_json *j, uint64_t v)
{
	value(j);
	fprintf(j->f, "%" PRIu64, v);
}

void rfs_json_i64(struct rfs_json *j, int64_t v)
{
	value(j);
	fprintf(j->f, "%" PRId64, v);
}

void rfs_json_fixed(struct rfs_json *j, double v, int decimals)
{
	value(j);
	fprintf(j->f, "%.*f", decimals, v);
}

void rfs_json_bool(struct rfs_json *j, int v)
{
	value(j);
	fputs(v ? "true" : "false", j->f);
}

void rfs_json_null(struct rfs_json *j)
{
	value(j);
	fputs("null", j->f);
}

char *rfs_json_iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

void rfs_json_time(struct rfs_json *j, time_t t)
{
	char buf[40];

	rfs_json_string(j, rfs_json_iso_time(t, buf, sizeof(buf)));
}

void rfs_json_newline(struct rfs_json *j)
{
	fputc('\n', j->f);
}

/* ---- reading a flat object (rfs_json_flat_get) ------------------------ */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static int hex4(const char *p, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

/* Put one byte into out (o < len - 1), or note that it did not fit. */
#define PUT(c)                                                         \
	do {                                                           \
		if (out && *o + 1 < len)                               \
			out[(*o)++] = (char)(c);                       \
		else if (out)                                          \
			*full = 1;                                     \
	} while (0)

/* A string at p (its opening quote); unescaped into out when out is not
 * NULL.  Returns the character after the closing quote, or NULL. */
static const char *scan_string(const char *p, char *out, size_t len,
			       size_t *o, int *full)
{
	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		if (c == '"')
			return p;
		if (c < 0x20)
			return NULL; /* the end of text, or a raw control */
		if (c != '\\') {
			PUT(c);
			continue;
		}
		c = (unsigned char)*p++;
		switch (c) {
		case '"': case '\\': case '/': PUT(c); break;
		case 'b': PUT('\b'); break;
		case 'f': PUT('\f'); break;
		case 'n': PUT('\n'); break;
		case 'r': PUT('\r'); break;
		case 't': PUT('\t'); break;
		case 'u': {
			unsigned v;
			if (hex4(p, &v) < 0 || v == 0 ||
			    (v >= 0xd800 && v <= 0xdfff))
				return NULL; /* no NUL, no surrogates */
			p += 4;
			if (v < 0x80) {
				PUT(v);
			} else if (v < 0x800) {
				PUT(0xc0 | v >> 6);
				PUT(0x80 | (v & 0x3f));
			} else {
				PUT(0xe0 | v >> 12);
				PUT(0x80 | (v >> 6 & 0x3f));
				PUT(0x80 | (v & 0x3f));
			}
			break;
		}
		default:
			return NULL;
		}
	}
}

/* A number or a literal at p: its end, or NULL. */
static const char *scan_scalar(const char *p)
{
	const char *s = p;

	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	while ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' ||
	       *p == 'E' || *p == '+' || (*p == '-' && p > s + 1))
		p++;
	return p;
}

int rfs_json_flat_get(const char *text, const char *key, char *out,
		      size_t len)
{
	const char *p = skip_ws(text);
	char name[256];
	int found = 0, full = 0;

	if (!len)
		return -ENOSPC;
	out[0] = '\0';
	if (*p++ != '{')
		return -EINVAL;
	p = skip_ws(p);
	if (*p == '}')
		goto end;
	for (;;) {
		size_t o = 0;
		int nfull = 0;
		if (!(p = scan_string(p, name, sizeof(name), &o, &nfull)))
			return -EINVAL;
		name[o] = '\0';
		int match = !nfull && !found && strcmp(name, key) == 0;
		p = skip_ws(p);
		if (*p++ != ':')
			return -EINVAL;
		p = skip_ws(p);
		if (*p == '"') {
			o = 0;
			p = scan_string(p, match ? out : NULL, len, &o, &full);
			if (!p)
				return -EINVAL;
			if (match)
				out[o] = '\0';
		} else {
			const char *e = scan_scalar(p);
			if (!e)
				return -EINVAL;
			if (match) {
				size_t n = strncmp(p, "null", 4) ? (size_t)(e - p) : 0;
				if (n + 1 > len) {
					full = 1;
				} else {
					memcpy(out, p, n);
					out[n] = '\0';
				}
			}
			p = e;
		}
		found |= match;
		p = skip_ws(p);
		if (*p == '}')
			break;
		if (*p++ != ',')
			return -EINVAL;
		p = skip_ws(p);
	}
end:
	p = skip_ws(p + 1);
	if (*p)
		return -EINVAL; /* something after the object */
	if (!found)
		return -ENOENT;
	return full ? -ENOSPC : 0;
}
