/* cli_cache.c - `rasterfs cache`: look at and maintain a cache store.
 *
 *   stats   what the store holds (read-only open: changes nothing)
 *   ls      each output by its virtual name (source path below its root +
 *           canonical chain), optionally matching a glob (read-only)
 *   verify  read every object and check it against its entry, look for
 *           unindexed files and stale scratch (read-only open; exit 1
 *           when it finds problems)
 *   gc      repair, drop outputs of changed or removed sources, evict to
 *           the limit
 *   clear   remove every output (refused while a mount uses the store)
 *
 * Writers: gc and clear open the store normally, so this process gets its
 * own committer thread and every LMDB write transaction here is made by
 * it, as in a daemon (the one-writer rule is per process).  LMDB's own
 * writer lock orders them with the write transactions of mounts that use
 * the store at the same time.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rasterfs/cli.h"
#include "rasterfs/err.h"
#include "rasterfs/json.h"
#include "rasterfs/log.h"
#include "rasterfs/store.h"

struct cli {
	const char *dir;
	int json;
	uint64_t limit; /* --limit, 0: not given */
	const char *pattern; /* ls PATTERN, or NULL */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rasterfs cache [--cache DIR] [--json] COMMAND\n\n"
		"    stats            objects, bytes, limit, ages, outputs per source\n"
		"    ls [PATTERN]     every output by its virtual name (source below\n"
		"                     its mount's root + canonical chain), size,\n"
		"                     created, last read; PATTERN a shell glob over\n"
		"                     the name ('*' also matches '/'), quoted\n"
		"    verify           check every object's size and checksum, and\n"
		"                     look for unindexed files and stale scratch\n"
		"                     (exit 1 if anything is wrong)\n"
		"    gc [--limit SIZE] repair, drop outputs of changed or removed\n"
		"                     sources, evict to SIZE (default: the\n"
		"                     cache_size the last mount recorded)\n"
		"    clear            remove every output (not while mounted)\n"
		"    gc --shared DIR [--limit SIZE] [--min-age S]\n"
		"                     a shared tier: evict the least recently\n"
		"                     used or published objects to SIZE, never\n"
		"                     one used within S s (default 3600); remove\n"
		"                     stale temporary files, claims and runs\n\n"
		"DIR defaults to the mounts' default, $XDG_CACHE_HOME/rasterfs or\n"
		"~/.cache/rasterfs.\n");
}

/* An entry's time for people and for --json alike: "-" for none. */
static void iso_time(int64_t ns, char *buf, size_t len)
{
	if (!ns)
		snprintf(buf, len, "-");
	else
		rfs_json_iso_time((time_t)(ns / 1000000000), buf, len);
}

static void human(uint64_t b, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i)
		snprintf(buf, len, "%.1f %s", v, unit[i]);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
}

static int open_store(const struct cli *c, unsigned flags, rfs_store **st)
{
	struct rfs_store_options o = { .flags = flags };
	char format[PATH_MAX];
	int rc;

	/* gc and clear open for writing, which would make a new store in
	 * any directory: they only work on an existing one. */
	snprintf(format, sizeof(format), "%s/FORMAT", c->dir);
	if (access(format, F_OK) < 0) {
		fprintf(stderr, "rasterfs cache: %s: no cache store there "
			"(no FORMAT file)\n", c->dir);
		return -ENOENT;
	}
	rc = rfs_store_open_opts(c->dir, &o, st);

	if (rc)
		fprintf(stderr, "rasterfs cache: %s: %s %s\n", c->dir,
			rfs_err_name(rc), rfs_strerror(rc));
	return rc;
}

/* ---- stats ------------------------------------------------------------ */

struct per_source {
	char *name;
	uint64_t objects, bytes;
};

struct stats_acc {
	uint64_t n;
	int64_t oldest, newest, least_read, last_read;
	struct per_source *src;
	size_t nsrc, cap;
	int oom;
};

static int stats_cb(void *arg, const struct rfs_store_info *e)
{
	struct stats_acc *a = arg;
	const char *name = e->source_abs[0] ? e->source_abs : e->source;
	size_t i;

	if (!a->n++ || e->created_ns < a->oldest)
		a->oldest = e->created_ns;
	if (a->n == 1 || e->created_ns > a->newest)
		a->newest = e->created_ns;
	if (a->n == 1 || e->atime_ns < a->least_read)
		a->least_read = e->atime_ns;
	if (a->n == 1 || e->atime_ns > a->last_read)
		a->last_read = e->atime_ns;
	/* Linear: stats is for people, and stores hold few sources. */
	for (i = 0; i < a->nsrc; i++)
		if (!strcmp(a->src[i].name, name))
			break;
	if (i == a->nsrc) {
		if (a->nsrc == a->cap) {
			size_t nc = a->cap ? 2 * a->cap : 16;
			struct per_source *ns = realloc(a->src,
							nc * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			a->src = ns;
			a->cap = nc;
		}
		a->src[i].name = strdup(name);
		if (!a->src[i].name)
			return -ENOMEM;
		a->src[i].objects = a->src[i].bytes = 0;
		a->nsrc++;
	}
	a->src[i].objects++;
	a->src[i].bytes += e->size;
	return 0;
}

static int by_bytes(const void *x, const void *y)
{
	const struct per_source *a = x, *b = y;

	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return strcmp(a->name, b->name);
}

static int cmd_stats(const struct cli *c)
{
	struct stats_acc a = { 0 };
	rfs_store *st;
	uint64_t objects = 0, bytes = 0, limit = 0;
	char t1[32], t2[32], t3[32], t4[32], h1[32], h2[32];
	int rc;

	if (open_store(c, RFS_STORE_RDONLY, &st))
		return 1;
	rc = rfs_store_stats(st, &objects, &bytes);
	if (!rc)
		rc = rfs_store_recorded_limit(st, &limit);
	if (!rc)
		rc = rfs_store_foreach(st, stats_cb, &a);
	rfs_store_close(st);
	if (rc) {
		fprintf(stderr, "rasterfs cache stats: %s\n", rfs_strerror(rc));
		return 1;
	}
	qsort(a.src, a.nsrc, sizeof(*a.src), by_bytes);
	iso_time(a.oldest, t1, sizeof(t1));
	iso_time(a.newest, t2, sizeof(t2));
	iso_time(a.least_read, t3, sizeof(t3));
	iso_time(a.last_read, t4, sizeof(t4));
	if (c->json) {
		struct rfs_json j;

		rfs_json_init(&j, stdout);
		rfs_json_object(&j);
		rfs_json_key(&j, "store");
		rfs_json_string(&j, c->dir);
		rfs_json_key(&j, "objects");
		rfs_json_u64(&j, objects);
		rfs_json_key(&j, "bytes");
		rfs_json_u64(&j, bytes);
		rfs_json_key(&j, "limit");
		rfs_json_u64(&j, limit);
		rfs_json_key(&j, "oldest");
		rfs_json_string(&j, t1);
		rfs_json_key(&j, "newest");
		rfs_json_string(&j, t2);
		rfs_json_key(&j, "least_recently_read");
		rfs_json_string(&j, t3);
		rfs_json_key(&j, "last_read");
		rfs_json_string(&j, t4);
		rfs_json_key(&j, "sources");
		rfs_json_array(&j);
		for (size_t i = 0; i < a.nsrc; i++) {
			rfs_json_object(&j);
			rfs_json_key(&j, "source");
			rfs_json_string(&j, a.src[i].name);
			rfs_json_key(&j, "objects");
			rfs_json_u64(&j, a.src[i].objects);
			rfs_json_key(&j, "bytes");
			rfs_json_u64(&j, a.src[i].bytes);
			rfs_json_end(&j);
		}
		rfs_json_end(&j);
		rfs_json_end(&j);
		rfs_json_newline(&j);
	} else {
		human(bytes, h1, sizeof(h1));
		human(limit, h2, sizeof(h2));
		printf("store      %s\nobjects    %" PRIu64 "\nbytes      %s "
		       "(%" PRIu64 ")\nlimit      %s\n", c->dir, objects, h1,
		       bytes, limit ? h2 : "none recorded");
		printf("oldest     %s\nnewest     %s\nleast read %s\n"
		       "last read  %s\n", t1, t2, t3, t4);
		if (a.nsrc)
			printf("%8s %10s  source\n", "objects", "bytes");
		for (size_t i = 0; i < a.nsrc; i++) {
			human(a.src[i].bytes, h1, sizeof(h1));
			printf("%8" PRIu64 " %10s  %s\n", a.src[i].objects, h1,
			       a.src[i].name);
		}
	}
	for (size_t i = 0; i < a.nsrc; i++)
		free(a.src[i].name);
	free(a.src);
	return 0;
}

/* ---- ls --------------------------------------------------------------- */

struct ls_entry {
	char *name;        /* source + canonical chain */
	char *source_abs;  /* "" when the mount gave no root */
	uint64_t size;
	int64_t created_ns, atime_ns;
	char key[RFS_KEY_HEX];
};

struct ls_acc {
	const char *pattern;
	struct ls_entry *e;
	size_t n, cap;
};

static int ls_cb(void *arg, const struct rfs_store_info *i)
{
	struct ls_acc *a = arg;
	struct ls_entry *e;
	char *name;

	/* The virtual name: what a reader of the mount that computed it
	 * names (canonical: every name meaning it is one entry). */
	if (asprintf(&name, "%s%s", i->source, i->canonical) < 0)
		return -ENOMEM;
	if (a->pattern && fnmatch(a->pattern, name, 0) != 0) {
		free(name);
		return 0;
	}
	if (a->n == a->cap) {
		size_t nc = a->cap ? 2 * a->cap : 64;
		void *ne = realloc(a->e, nc * sizeof(*a->e));
		if (!ne) {
			free(name);
			return -ENOMEM;
		}
		a->e = ne;
		a->cap = nc;
	}
	e = &a->e[a->n];
	e->name = name;
	if (!(e->source_abs = strdup(i->source_abs))) {
		free(name);
		return -ENOMEM;
	}
	e->size = i->size;
	e->created_ns = i->created_ns;
	e->atime_ns = i->atime_ns;
	rfs_key_hex(&i->key, e->key);
	a->n++;
	return 0;
}

static int by_name(const void *x, const void *y)
{
	const struct ls_entry *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : strcmp(a->source_abs, b->source_abs);
}

static int cmd_ls(const struct cli *c)
{
	struct ls_acc a = { .pattern = c->pattern };
	char t1[32], t2[32], h[32];
	rfs_store *st;
	int rc;

	if (open_store(c, RFS_STORE_RDONLY, &st))
		return 1;
	rc = rfs_store_foreach(st, ls_cb, &a);
	rfs_store_close(st);
	if (rc) {
		fprintf(stderr, "rasterfs cache ls: %s\n", rfs_strerror(rc));
		goto out;
	}
	qsort(a.e, a.n, sizeof(*a.e), by_name);
	if (c->json) {
		struct rfs_json j;

		rfs_json_init(&j, stdout);
		rfs_json_array(&j);
		for (size_t i = 0; i < a.n; i++) {
			iso_time(a.e[i].created_ns, t1, sizeof(t1));
			iso_time(a.e[i].atime_ns, t2, sizeof(t2));
			rfs_json_object(&j);
			rfs_json_key(&j, "name");
			rfs_json_string(&j, a.e[i].name);
			rfs_json_key(&j, "source_abs");
			rfs_json_string(&j, a.e[i].source_abs);
			rfs_json_key(&j, "size");
			rfs_json_u64(&j, a.e[i].size);
			rfs_json_key(&j, "created");
			rfs_json_string(&j, t1);
			rfs_json_key(&j, "last_read");
			rfs_json_string(&j, t2);
			rfs_json_key(&j, "key");
			rfs_json_string(&j, a.e[i].key);
			rfs_json_end(&j);
		}
		rfs_json_end(&j);
		rfs_json_newline(&j);
	} else {
		if (a.n)
			printf("%10s  %-20s  %-20s  %s\n", "size", "created",
			       "last read", "name");
		for (size_t i = 0; i < a.n; i++) {
			iso_time(a.e[i].created_ns, t1, sizeof(t1));
			iso_time(a.e[i].atime_ns, t2, sizeof(t2));
			human(a.e[i].size, h, sizeof(h));
			printf("%10s  %-20s  %-20s  %s\n", h, t1, t2,
			       a.e[i].name);
		}
	}
out:
	for (size_t i = 0; i < a.n; i++) {
		free(a.e[i].name);
		free(a.e[i].source_abs);
	}
	free(a.e);
	return rc ? 1 : 0;
}

/* ---- verify ----------------------------------------------------------- */

static const char *const problem_name[] = {
	[RFS_PROBLEM_RECORD] = "record",
	[RFS_PROBLEM_MISSING] = "missing",
	[RFS_PROBLEM_SIZE] = "size",
	[RFS_PROBLEM_CHECKSUM] = "checksum",
	[RFS_PROBLEM_ORPHAN] = "orphan",
	[RFS_PROBLEM_SCRATCH] = "scratch",
	[RFS_PROBLEM_COUNTERS] = "counters",
	[RFS_PROBLEM_UNKNOWN] = "unknown",
	[RFS_PROBLEM_DESCRIBED] = "described",
};

struct verify_out {
	const struct cli *c;
	struct rfs_json j;        /* --json: the "problems" array is open */
};

static void problem_cb(void *arg, enum rfs_store_problem kind,
		       const char *what, const char *detail)
{
	struct verify_out *o = arg;

	if (o->c->json) {
		rfs_json_object(&o->j);
		rfs_json_key(&o->j, "kind");
		rfs_json_string(&o->j, problem_name[kind]);
		rfs_json_key(&o->j, "what");
		rfs_json_string(&o->j, what);
		rfs_json_key(&o->j, "detail");
		rfs_json_string(&o->j, detail);
		rfs_json_end(&o->j);
	} else {
		printf("%-9s %s: %s\n", problem_name[kind], what, detail);
	}
}

static int cmd_verify(const struct cli *c)
{
	struct rfs_store_verify_report rep;
	struct verify_out o = { .c = c };
	rfs_store *st;
	int rc;

	if (open_store(c, RFS_STORE_RDONLY, &st))
		return 1;
	if (c->json) {
		rfs_json_init(&o.j, stdout);
		rfs_json_object(&o.j);
		rfs_json_key(&o.j, "store");
		rfs_json_string(&o.j, c->dir);
		rfs_json_key(&o.j, "problems");
		rfs_json_array(&o.j);
	}
	rc = rfs_store_verify(st, problem_cb, &o, &rep);
	rfs_store_close(st);
	if (c->json) {
		rfs_json_end(&o.j);
		rfs_json_key(&o.j, "entries");
		rfs_json_u64(&o.j, rep.entries);
		rfs_json_key(&o.j, "bytes_checked");
		rfs_json_u64(&o.j, rep.bytes_checked);
		rfs_json_key(&o.j, "descriptions");
		rfs_json_u64(&o.j, rep.descriptions);
		rfs_json_key(&o.j, "problem_count");
		rfs_json_u64(&o.j, rep.problems);
		rfs_json_key(&o.j, "ok");
		rfs_json_bool(&o.j, !rc && !rep.problems);
		if (rc) {
			rfs_json_key(&o.j, "error");
			rfs_json_string(&o.j, rfs_strerror(rc));
		}
		rfs_json_end(&o.j);
		rfs_json_newline(&o.j);
	} else if (!rc) {
		printf("%" PRIu64 " entries, %" PRIu64 " bytes, %" PRIu64
		       " descriptions checked: %s%" PRIu64 " problems\n",
		       rep.entries, rep.bytes_checked, rep.descriptions,
		       rep.problems ? "" : "ok, ", rep.problems);
	}
	if (rc) {
		fprintf(stderr, "rasterfs cache verify: %s\n",
			rfs_strerror(rc));
		return 1;
	}
	return rep.problems ? 1 : 0;
}

/* ---- gc, clear -------------------------------------------------------- */

static int cmd_gc(const struct cli *c)
{
	struct rfs_store_gc_report r;
	uint64_t limit = c->limit;
	rfs_store *st;
	int rc;

	if (open_store(c, 0, &st))
		return 1;
	rc = limit ? 0 : rfs_store_recorded_limit(st, &limit);
	if (!rc)
		rc = rfs_store_gc(st, limit, &r);
	rfs_store_close(st);
	if (rc) {
		fprintf(stderr, "rasterfs cache gc: %s %s\n", rfs_err_name(rc),
			rfs_strerror(rc));
		return 1;
	}
	if (c->json) {
		const struct {
			const char *key;
			uint64_t v;
		} f[] = {
			{ "scratch_dirs", r.scratch_dirs },
			{ "orphans", r.orphans },
			{ "tmp_files", r.tmp_files },
			{ "dangling", r.dangling },
			{ "changed", r.changed },
			{ "changed_bytes", r.changed_bytes },
			{ "evicted", r.evicted },
			{ "evicted_bytes", r.evicted_bytes },
			{ "descriptions_dropped", r.descriptions },
			{ "limit", limit },
			{ "objects", r.objects },
			{ "bytes", r.bytes },
		};
		struct rfs_json j;

		rfs_json_init(&j, stdout);
		rfs_json_object(&j);
		for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++) {
			rfs_json_key(&j, f[i].key);
			rfs_json_u64(&j, f[i].v);
		}
		rfs_json_end(&j);
		rfs_json_newline(&j);
	} else {
		char h[32];

		human(r.bytes, h, sizeof(h));
		printf("repair: %u stale scratch dirs, %u unindexed objects, "
		       "%u temp files, %u dangling entries\n", r.scratch_dirs,
		       r.orphans, r.tmp_files, r.dangling);
		printf("changed or removed sources: %" PRIu64 " outputs "
		       "and %" PRIu64 " descriptions dropped\n", r.changed,
		       r.descriptions);
		printf("evicted: %" PRIu64 " outputs (%" PRIu64 " bytes)%s\n",
		       r.evicted, r.evicted_bytes,
		       limit ? "" : " (no limit recorded; use --limit)");
		printf("left: %" PRIu64 " outputs, %s\n", r.objects, h);
	}
	return 0;
}

/* {"ok": ok, "key": v} */
static void json_ok(int ok, const char *key, int64_t v)
{
	struct rfs_json j;

	rfs_json_init(&j, stdout);
	rfs_json_object(&j);
	rfs_json_key(&j, "ok");
	rfs_json_bool(&j, ok);
	rfs_json_key(&j, key);
	rfs_json_i64(&j, v);
	rfs_json_end(&j);
	rfs_json_newline(&j);
}

static int cmd_clear(const struct cli *c)
{
	uint64_t removed = 0;
	long pid = 0;
	rfs_store *st;
	int rc;

	if (open_store(c, 0, &st))
		return 1;
	rc = rfs_store_clear(st, &removed, &pid);
	rfs_store_close(st);
	if (rc == -EBUSY) {
		fprintf(stderr, "rasterfs cache clear: %s is in use by process "
			"%ld (a mount); unmount it first\n", c->dir, pid);
		if (c->json)
			json_ok(0, "busy_pid", pid);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "rasterfs cache clear: %s %s\n",
			rfs_err_name(rc), rfs_strerror(rc));
		return 1;
	}
	if (c->json)
		json_ok(1, "removed", (int64_t)removed);
	else
		printf("removed %" PRIu64 " outputs\n", removed);
	return 0;
}

int rfs_cli_cache(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'l' },
		{ "shared", required_argument, NULL, 's' },
		{ "min-age", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c = { 0 };
	char *dir = NULL, *end;
	const char *cmd, *shared = NULL;
	long min_age = RFS_CLI_SHARED_MIN_AGE;
	int opt, ret;

	rfs_log_init("rasterfs", RFS_LOG_STDERR, LOG_WARNING);
	optind = 1;
	/* GNU getopt permutes: options may come after the command too. */
	while ((opt = getopt_long(argc, argv, "c:jl:h", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'c':
			c.dir = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 'l':
			if (rfs_store_parse_size(optarg, &c.limit)) {
				fprintf(stderr, "rasterfs cache: RFS-E400 --limit %s: "
					"expected a size such as 20G, 500M or "
					"a number of bytes\n", optarg);
				return 2;
			}
			break;
		case 's':
			shared = optarg;
			break;
		case 'm':
			min_age = strtol(optarg, &end, 10);
			if (*end || min_age < 0) {
				fprintf(stderr, "rasterfs cache: RFS-E400 --min-age %s: "
					"expected seconds\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "ls") && optind < argc)
		c.pattern = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "rasterfs cache: RFS-E400 unexpected '%s'\n",
			argv[optind]);
		return 2;
	}
	if (shared) /* cli_slurm.c: a shared tier is no store */
		return rfs_cli_cache_shared(cmd, shared, c.limit,
					    (unsigned)min_age, c.json);
	if (!c.dir) {
		int rc = rfs_store_default_dir(&dir);

		if (rc < 0) {
			fprintf(stderr, "rasterfs cache: %s\n", rfs_strerror(rc));
			return 1;
		}
		c.dir = dir;
	}
	if (!strcmp(cmd, "stats"))
		ret = cmd_stats(&c);
	else if (!strcmp(cmd, "ls"))
		ret = cmd_ls(&c);
	else if (!strcmp(cmd, "verify"))
		ret = cmd_verify(&c);
	else if (!strcmp(cmd, "gc"))
		ret = cmd_gc(&c);
	else if (!strcmp(cmd, "clear"))
		ret = cmd_clear(&c);
	else {
		fprintf(stderr, "rasterfs cache: RFS-E400 unknown command '%s'\n", cmd);
		usage(stderr);
		ret = 2;
	}
	free(dir);
	return ret;
}
