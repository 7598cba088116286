/* fuzz_chain.c - a libFuzzer harness for the chain grammar (rfs_chain_parse).
 *
 * Built with -Dfuzz=true (clang, see tests/fuzz/README.md).  Any input
 * must be accepted or refused with one of the documented codes and a
 * message; an accepted chain's canonical text must parse again to the very
 * same chain (the canonical text is what keys are made of), and so must its
 * portable spelling, which holds no character Windows or SMB forbids.  A crash, a
 * sanitizer report or an abort() below is a finding.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/chain.h"
#include "rasterfs/err.h"

/* Longer than any name FUSE passes (NAME_MAX), so the limits are tried. */
#define MAX_INPUT 4096

static struct rfs_chain ch, ch2;

static void finding(const char *what, const char *text, const char *detail)
{
	fprintf(stderr, "fuzz_chain: %s: '%s' %s\n", what, text, detail);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[MAX_INPUT + 1];
	static char port[RFS_CHAIN_PORTABLE_MAX];
	char msg[RFS_MSG_MAX], msg2[RFS_MSG_MAX];
	int rc, rc2, n;

	if (size > MAX_INPUT)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* an embedded NUL ends the name, as in a path */
	msg[0] = 'x';
	rc = rfs_chain_parse(text, &ch, msg, sizeof(msg));
	if (rc != 0) {
		if (rc != -RFS_E_UNKNOWN_STEP && rc != -RFS_E_BAD_ARG &&
		    rc != -RFS_E_TOO_LONG)
			finding("undocumented code", text, rfs_err_name(rc));
		if (msg[0] == '\0' || memchr(msg, '\0', sizeof(msg)) == NULL)
			finding("a refusal without a message", text, "");
		return 0;
	}
	if (ch.nsteps < 0 || ch.nsteps > RFS_CHAIN_MAX_STEPS ||
	    (ch.nsteps == 0 && !strstr(ch.canonical, "@fmt=")) ||
	    ch.canonical[0] != '@' ||
	    memchr(ch.canonical, '\0', sizeof(ch.canonical)) == NULL)
		finding("a malformed result", text, ch.canonical);
	rc2 = rfs_chain_parse(ch.canonical, &ch2, msg2, sizeof(msg2));
	if (rc2 != 0)
		finding("canonical text refused", ch.canonical, msg2);
	if (memcmp(&ch, &ch2, sizeof(ch)) != 0)
		finding("canonical text parses to another chain", text,
			ch.canonical);
	n = rfs_chain_portable(&ch, port, sizeof(port));
	if (n < 0)
		finding("no portable spelling", text, rfs_err_name(n));
	if (strpbrk(port, "<>:\"/\\|?* ") || port[n - 1] == '.')
		finding("a portable spelling Windows refuses", text, port);
	rc2 = rfs_chain_parse(port, &ch2, msg2, sizeof(msg2));
	if (rc2 != 0)
		finding("portable spelling refused", port, msg2);
	if (memcmp(&ch, &ch2, sizeof(ch)) != 0)
		finding("portable spelling parses to another chain", text,
			port);
	return 0;
}
