/* crs.c - checking CRS codes against PROJ's database, with a memo.
 *
 * One PJ_CONTEXT for the process, created on first use; a PJ_CONTEXT is not
 * thread safe, so one mutex guards it and the memo.  The memo is a fixed
 * open-addressing table (linear probing, FNV-1a hash): a lookup thread
 * checks a handful of codes, so when a probe run is full its home slot is
 * simply overwritten.  Failures to reach the database itself are not
 * remembered, so they are retried.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <proj.h>

#include "rasterfs/chain.h"
#include "rasterfs/crs.h"
#include "rasterfs/err.h"
#include "rasterfs/log.h"
#include "rasterfs/step.h"

#define MEMO_SLOTS 256		/* power of two */
#define MEMO_PROBE 8
#define MEMO_MSG 384

struct memo {
	char crs[RFS_CRS_MAX];	/* "" = empty slot */
	bool ok;
	char msg[MEMO_MSG];	/* why not, when !ok */
};

static pthread_mutex_t crs_lock = PTHREAD_MUTEX_INITIALIZER;
static PJ_CONTEXT *crs_ctx;
static struct memo crs_memo[MEMO_SLOTS];
static char crs_auths[128];	/* "EPSG, ESRI, ..." */
static bool crs_auths_done;

/* FNV-1a, 32 bit (Fowler, Noll, Vo). */
static uint32_t crs_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static void crs_set_msg(char *msg, size_t msglen, const char *text)
{
	if (msg && msglen)
		snprintf(msg, msglen, "%s", text);
}

/* PROJ reports "crs not found" on stderr for every miss; our own message
 * says more, so PROJ's goes to the debug log only. */
static void crs_proj_log(void *data, int level, const char *text)
{
	(void)data;
	(void)level;
	rfs_log(LOG_DEBUG, "PROJ: %s", text);
}

static PJ_CONTEXT *crs_context(void)
{
	if (!crs_ctx) {
		crs_ctx = proj_context_create();
		if (crs_ctx)
			proj_log_func(crs_ctx, NULL, crs_proj_log);
	}
	return crs_ctx;
}

static bool crs_exists(PJ_CONTEXT *ctx, const char *auth, const char *code,
		       PJ_CATEGORY cat, char *name, size_t namelen)
{
	PJ *pj = proj_create_from_database(ctx, auth, code, cat, 0, NULL);
	const char *n;

	if (!pj)
		return false;
	if (name && namelen) {
		n = proj_get_name(pj);
		snprintf(name, namelen, "%s", n ? n : "?");
	}
	proj_destroy(pj);
	return true;
}

/* Is auth one of the database's authorities?  The list is asked for once
 * per context: the query behind it scans every table (~15 ms). */
static bool crs_known_authority(PJ_CONTEXT *ctx, const char *auth,
				const char **list)
{
	PROJ_STRING_LIST l;
	size_t used = 0, n = strlen(auth), len;
	const char *p;
	int i, k;

	if (!crs_auths_done) {
		crs_auths[0] = '\0';
		l = proj_get_authorities_from_database(ctx);
		for (i = 0; l && l[i]; i++) {
			k = snprintf(crs_auths + used, sizeof(crs_auths) - used,
				     "%s%s", i ? ", " : "", l[i]);
			if (k < 0 || (size_t)k >= sizeof(crs_auths) - used)
				break;
			used += (size_t)k;
		}
		if (l)
			proj_string_list_destroy(l);
		crs_auths_done = true;
	}
	*list = crs_auths;
	if (crs_auths[0] == '\0')
		return true;	/* cannot tell: do not claim it is unknown */
	for (p = crs_auths; *p;) {
		len = strcspn(p, ",");
		if (len == n && strncasecmp(p, auth, n) == 0)
			return true;
		p += len;
		while (*p == ',' || *p == ' ')
			p++;
	}
	return false;
}

/* Look crs up in PROJ's database.  Returns 1 (a CRS), 0 (not one; why in
 * why) or a negative code when the database cannot be used at all. */
static int crs_lookup(const char *crs, char *why, size_t whylen)
{
	static const struct {
		PJ_CATEGORY cat;
		const char *what;
	} others[] = {
		{ PJ_CATEGORY_ELLIPSOID, "an ellipsoid" },
		{ PJ_CATEGORY_PRIME_MERIDIAN, "a prime meridian" },
		{ PJ_CATEGORY_DATUM, "a datum" },
		{ PJ_CATEGORY_COORDINATE_OPERATION, "a coordinate operation" },
	};
	PJ_CONTEXT *ctx = crs_context();
	char auth[RFS_CRS_MAX], code[RFS_CRS_MAX], name[128];
	const char *list;
	const char *colon = strchr(crs, ':');
	size_t alen, i;

	if (!ctx || !proj_context_get_database_path(ctx)) {
		snprintf(why, whylen, "cannot check %s: PROJ's database "
			 "(proj.db) cannot be opened; is PROJ_DATA right?",
			 crs);
		return -RFS_E_INTERNAL;
	}
	alen = colon ? (size_t)(colon - crs) : 0;
	if (!colon || alen == 0 || colon[1] == '\0' || alen >= sizeof(auth) ||
	    strlen(colon + 1) >= sizeof(code)) {
		snprintf(why, whylen, "'%.*s' is not a CRS code; write "
			 "AUTHORITY:CODE (e.g. EPSG:4326, EPSG:3857)",
			 RFS_CRS_MAX, crs);
		return 0;
	}
	memcpy(auth, crs, alen);
	auth[alen] = '\0';
	snprintf(code, sizeof(code), "%s", colon + 1);

	if (crs_exists(ctx, auth, code, PJ_CATEGORY_CRS, NULL, 0))
		return 1;

	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		if (crs_exists(ctx, auth, code, others[i].cat, name,
			       sizeof(name))) {
			snprintf(why, whylen, "%s is %s (%s) in PROJ's "
				 "database, not a CRS (e.g. EPSG:4326, "
				 "EPSG:3857)", crs, others[i].what, name);
			return 0;
		}
	}
	if (!crs_known_authority(ctx, auth, &list)) {
		snprintf(why, whylen, "%s: '%s' is not an authority in PROJ's "
			 "database (authorities: %s)", crs, auth, list);
		return 0;
	}
	/* Codes are case-sensitive (IGNF:LAMB93): offer the upper-case one. */
	for (i = 0; code[i]; i++)
		if (code[i] >= 'a' && code[i] <= 'z')
			code[i] = (char)(code[i] - 'a' + 'A');
	if (strcmp(code, colon + 1) != 0 &&
	    crs_exists(ctx, auth, code, PJ_CATEGORY_CRS, NULL, 0)) {
		snprintf(why, whylen, "%s is not a CRS in PROJ's database; "
			 "did you mean %s:%s? (codes are case-sensitive)",
			 crs, auth, code);
		return 0;
	}
	snprintf(why, whylen, "%s is not a CRS in PROJ's database (e.g. "
		 "EPSG:4326, EPSG:3857)", crs);
	return 0;
}

int rfs_crs_check(const char *crs, char *msg, size_t msglen)
{
	char why[MEMO_MSG];
	struct memo *m, *slot = NULL;
	uint32_t h;
	int i, rc;

	if (msg && msglen)
		msg[0] = '\0';
	if (!crs || !*crs || strlen(crs) >= RFS_CRS_MAX) {
		crs_set_msg(msg, msglen, "not a CRS code; write "
			    "AUTHORITY:CODE (e.g. EPSG:4326, EPSG:3857)");
		return -RFS_E_BAD_CRS;
	}

	h = crs_hash(crs);
	pthread_mutex_lock(&crs_lock);
	for (i = 0; i < MEMO_PROBE; i++) {
		m = &crs_memo[(h + (uint32_t)i) & (MEMO_SLOTS - 1)];
		if (m->crs[0] == '\0') {
			if (!slot)
				slot = m;
			break;
		}
		if (strcmp(m->crs, crs) == 0) {
			rc = m->ok ? 0 : -RFS_E_BAD_CRS;
			if (!m->ok)
				crs_set_msg(msg, msglen, m->msg);
			goto out;
		}
	}
	if (!slot)
		slot = &crs_memo[h & (MEMO_SLOTS - 1)];

	why[0] = '\0';
	rc = crs_lookup(crs, why, sizeof(why));
	if (rc < 0) {
		crs_set_msg(msg, msglen, why);
		goto out;
	}
	snprintf(slot->crs, sizeof(slot->crs), "%s", crs);
	slot->ok = rc == 1;
	snprintf(slot->msg, sizeof(slot->msg), "%s", slot->ok ? "" : why);
	if (slot->ok) {
		rc = 0;
	} else {
		crs_set_msg(msg, msglen, why);
		rc = -RFS_E_BAD_CRS;
	}
out:
	pthread_mutex_unlock(&crs_lock);
	return rc;
}

void rfs_crs_cleanup(void)
{
	pthread_mutex_lock(&crs_lock);
	if (crs_ctx)
		proj_context_destroy(crs_ctx);
	crs_ctx = NULL;
	memset(crs_memo, 0, sizeof(crs_memo));
	crs_auths_done = false;
	pthread_mutex_unlock(&crs_lock);
}

int rfs_crs_check_chain(const struct rfs_chain *chain, char *msg,
			size_t msglen)
{
	int rc;

	for (int s = 0; s < chain->nsteps; s++) {
		/* the step table says which steps name a CRS */
		const char *crs = rfs_step_crs(&chain->steps[s]);
		if (crs && (rc = rfs_crs_check(crs, msg, msglen)) < 0)
			return rc;
	}
	return 0;
}
