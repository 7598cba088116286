/* fs_int.h - private to the FUSE layer's rooms (src/fs*.c). */
#ifndef RASTERFS_FS_INT_H
#define RASTERFS_FS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "rasterfs/fs.h"

/* A file handle: an fd of a real file or store object, or the text of a
 * control file. */
struct handle {
	int fd;
	size_t len;
	char text[];
};

struct dir_snapshot;

/* fs.c */
struct rfs_fs *fs_of(fuse_req_t req);
struct rfs_node *node_of(fuse_req_t req, fuse_ino_t ino);
int source_check(struct rfs_fs *fs, struct rfs_node *n,
			struct stat *sst);
int node_learn_size(struct rfs_node *n, uint64_t size,
			   int64_t mtime_ns);
void handle_free(struct handle *h);
int reply_open_fd(fuse_req_t req, struct fuse_file_info *fi, int fd,
			 int keep_cache, int direct_io);

/* fs_name.c */
size_t world_suffix(const char *name);
int join_path(char *buf, size_t len, const char *dir, const char *name);
const char *rel(const char *path);
int check_inside(struct rfs_fs *fs, const char *path, char *abs);
int resolve_virtual(struct rfs_fs *fs, const char *dir,
			   const char *name, char *src, struct rfs_chain *chain,
			   struct stat *sst, char *msg, size_t msglen);
int resolve_world(struct rfs_fs *fs, const char *dir,
			 const char *name, char *src, struct rfs_chain *chain,
			 struct stat *sst);

/* fs_world.c */
bool is_world(const struct rfs_node *n);
int world_size(struct rfs_fs *fs, struct rfs_node *n, uint64_t *size);
int snapshot_add_worlds(struct rfs_fs *fs, struct rfs_node *dir,
			       struct dir_snapshot *d, size_t *cap);

/* fs_open.c */
int pin_node_source(struct rfs_fs *fs, struct rfs_node *n);
void open_virtual(fuse_req_t req, struct rfs_node *n,
			 struct fuse_file_info *fi);

/* fs_ctl.c */
void open_ctl(fuse_req_t req, struct rfs_node *node,
		     struct fuse_file_info *fi);
void ctl_attr(struct rfs_node *n, struct stat *st);
int virtual_xattr(struct rfs_fs *fs, struct rfs_node *n, uid_t uid,
			 const char *name, char *buf, size_t len);

/* fs_dir.c */
int snapshot_add(struct dir_snapshot *d, size_t *cap, const char *name,
			ino_t ino, unsigned char type);
void fs_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi);
void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
		       off_t off, struct fuse_file_info *fi);
void fs_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi);
extern const char *const vattrs[6];

#endif
