/* fsutil.c - small filesystem helpers of the store: flock, fsync of a
 * directory, mkdir -p, opening, emptying and removing a tree, hashing a
 * file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "rasterfs/store.h"
#include "store_int.h"

int store_flock_retry(int fd, int op)
{
	while (flock(fd, op) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int store_fsync_dir_at(int dfd, const char *rel)
{
	int fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* mkdir -p; private directories (note 11). */
int rfs_store_make_dir(const char *path)
{
	char *p, *s;
	int rc = 0;

	if (!*path)
		return -ENOENT;
	s = strdup(path);
	if (!s)
		return -ENOMEM;
	for (p = s + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(s, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(s);
	return rc;
}

/* Remove every entry of the directory dfd except `keep` (may be NULL),
 * recursively, never following symlinks.  dfd stays open and owned by the
 * caller.  Returns 0 or the first -errno met (it goes on after an error). */
int store_empty_dir(int dfd, const char *keep)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0, removed;

	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* readdir need not return entries in a directory that changes under
	 * it, so sweep until a pass removes nothing. */
	do {
		removed = 0;
		rewinddir(d);
		while ((de = readdir(d))) {
			const char *n = de->d_name;

			if (!strcmp(n, ".") || !strcmp(n, "..") ||
			    (keep && !strcmp(n, keep)))
				continue;
			if (unlinkat(fd, n, 0) == 0) {
				removed++;
				continue;
			}
			if (errno == ENOENT)
				continue;
			if (errno != EISDIR) {
				if (!rc)
					rc = -errno;
				continue;
			}
			int sub = openat(fd, n, O_RDONLY | O_DIRECTORY |
					 O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (!rc && errno != ENOENT)
					rc = -errno;
				continue;
			}
			int r = store_empty_dir(sub, NULL);

			close(sub);
			if (!rc)
				rc = r;
			if (unlinkat(fd, n, AT_REMOVEDIR) == 0)
				removed++;
			else if (!rc && errno != ENOENT)
				rc = -errno;
		}
	} while (removed && !rc);
	closedir(d);
	return rc;
}

/* Remove the directory rel (relative to dfd) and all it holds. */
int store_remove_tree_at(int dfd, const char *rel)
{
	int fd, rc;

	fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = store_empty_dir(fd, NULL);
	close(fd);
	if (unlinkat(dfd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -errno;
	return rc;
}

int store_opendir_at(int dfd, const char *rel, int flags, DIR **d)
{
	int fd, rc;

	*d = NULL;
	fd = openat(dfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	*d = fdopendir(fd);
	if (!*d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return 0;
}

int store_hash_fd(int fd, unsigned char *buf, size_t bufsz,
		  uint64_t *total, uint64_t *sum)
{
	XXH3_state_t state;
	ssize_t n;

	*total = 0;
	XXH3_INITSTATE(&state);
	XXH3_64bits_reset(&state);
	while ((n = read(fd, buf, bufsz)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		XXH3_64bits_update(&state, buf, (size_t)n);
		*total += (uint64_t)n;
	}
	*sum = XXH3_64bits_digest(&state);
	return 0;
}
