/* json.h - a small JSON writer (RFC 8259) over a stdio stream.
 *
 * What the jobs file and `rasterfs cache --json` write: objects and arrays
 * with ", " between members and ": " after keys, strings with quote,
 * backslash and control characters escaped, integers, fixed-point numbers
 * and ISO 8601 UTC times.  The writer places the commas; the caller says
 * what comes.  In memory, write to open_memstream(3).  Errors are the
 * stream's (ferror, fclose).  Hand-written because it is forty lines and
 * no JSON library in Debian writes to a FILE * without building a tree.
 */
#ifndef RASTERFS_JSON_H
#define RASTERFS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define RFS_JSON_DEPTH 8

struct rfs_json {
	FILE *f;
	int depth;                          /* open objects and arrays */
	unsigned char any[RFS_JSON_DEPTH];  /* something written at a level */
	unsigned char array[RFS_JSON_DEPTH];
};

/* Start writing to f (at no level: one value, or several in a row such as
 * one object per line). */
void rfs_json_init(struct rfs_json *j, FILE *f);

/* Open an object or an array as the next value; close the innermost. */
void rfs_json_object(struct rfs_json *j);
void rfs_json_array(struct rfs_json *j);
void rfs_json_end(struct rfs_json *j);

/* The next member's key, in an object. */
void rfs_json_key(struct rfs_json *j, const char *key);

/* Values.  rfs_json_string(NULL) writes null; rfs_json_fixed writes v with
 * that many decimals (%.*f); rfs_json_time the UTC time t as
 * "YYYY-MM-DDTHH:MM:SSZ". */
void rfs_json_string(struct rfs_json *j, const char *s);
void rfs_json_u64(struct rfs_json *j, uint64_t v);
void rfs_json_i64(struct rfs_json *j, int64_t v);
void rfs_json_fixed(struct rfs_json *j, double v, int decimals);
void rfs_json_bool(struct rfs_json *j, int v);
void rfs_json_null(struct rfs_json *j);
void rfs_json_time(struct rfs_json *j, time_t t);

/* A raw line break between top-level values. */
void rfs_json_newline(struct rfs_json *j);

/* t as the text rfs_json_time writes, without quotes, into buf (len >=
 * 21).  Returns buf. */
char *rfs_json_iso_time(time_t t, char *buf, size_t len);

/* Reading.  The value of key in text, a flat JSON object (one object whose
 * values are strings, numbers, true, false or null; no nesting; blanks
 * anywhere JSON allows them): 0 with the value in out (a string
 * unescaped, \u escapes as UTF-8; a number or literal as written; "" for
 * null), -ENOENT (no such key), -EINVAL (text is not such an object, or
 * a string holds a NUL), -ENOSPC (out is too small).  For what rasterfs
 * writes itself and reads back from another machine (the sidecars of a
 * shared tier, task results), so it checks the whole object's syntax. */
int rfs_json_flat_get(const char *text, const char *key, char *out,
		      size_t len);

#endif
