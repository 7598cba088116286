/* json.c - a small JSON writer over a stdio stream (see json.h). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
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
