/* crs.h - checking CRS codes against PROJ's database.
 *
 * Used by the daemon at lookup, so that a name with a CRS PROJ does not know
 * fails at once, before any job.  Results are remembered (codes are few), so
 * a repeated lookup costs a hash probe.  Thread safe.
 */
#ifndef RASTERFS_CRS_H
#define RASTERFS_CRS_H

#include <stddef.h>

/* Check that crs ("EPSG:3857", "ESRI:54009", "IGNF:LAMB93") names a CRS in
 * PROJ's database.  Returns 0 if it does; -RFS_E_BAD_CRS with a message
 * ("EPSG:99999 is not a CRS in PROJ's database (e.g. EPSG:4326, EPSG:3857)")
 * if it does not, or if it names an object that is not a CRS. */
int rfs_crs_check(const char *crs, char *msg, size_t msglen);

/* rfs_crs_check for every CRS the steps of chain name (the step table
 * says which do): 0, or the first failure's code and message. */
struct rfs_chain;
int rfs_crs_check_chain(const struct rfs_chain *chain, char *msg,
			size_t msglen);

/* Free the remembered results and the PROJ context; at shutdown. */
void rfs_crs_cleanup(void);

#endif
