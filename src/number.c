/* number.c - numbers written so that they read back exactly (number.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasterfs/number.h"

int rfs_format_double(double v, char *buf, size_t len)
{
	char tmp[48];
	int n = -1, p;

	if (isnan(v)) {
		n = snprintf(tmp, sizeof(tmp), "nan");
	} else if (isinf(v)) {
		n = snprintf(tmp, sizeof(tmp), "%s", v < 0 ? "-inf" : "inf");
	} else if (v == trunc(v) && fabs(v) < 1e15) {
		/* Integers in plain digits ("500", not "5e+02"); exact below
		 * 2^53. */
		n = snprintf(tmp, sizeof(tmp), "%.0f", v);
	} else {
		/* Shortest round trip: the fewest significant digits that
		 * strtod reads back as v; 17 always suffice for a double. */
		for (p = 1; p <= 17; p++) {
			n = snprintf(tmp, sizeof(tmp), "%.*g", p, v);
			if (strtod(tmp, NULL) == v)
				break;
		}
	}
	if (n < 0 || (size_t)n >= len)
		return -1;
	memcpy(buf, tmp, (size_t)n + 1);
	return n;
}
