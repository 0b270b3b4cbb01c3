/* awsnet.core.file — a file replaced whole or not at all, and an exclusive lock on a path.
 *
 *   write_atomic(path, data[, mode]) -> true | nil, message, code
 *       writes `data` to `<path>.tmp` (created with O_EXCL, `mode` default 0600), fsyncs it,
 *       renames it over `path` and fsyncs the folder: after a crash `path` is the old or the new
 *       content, never a mix. code "exists" when `<path>.tmp` is already there (another writer,
 *       or a crash's leftover: the caller, holding the lock, decides to remove it).
 *   lock(path) -> handle | nil, message, code
 *       opens or creates `path` and takes flock(LOCK_EX | LOCK_NB) on it, then writes this
 *       process's id into it; code "locked" when another open file holds it (another process,
 *       or another lock() in this one). handle:close() (also __gc and __close; harmless twice)
 *       removes the file and releases the lock. The lock is not inherited by exec'd children.
 *   mkdir(path[, mode]) -> true | nil, message, "io"
 *       makes the folder and its missing parents (mode default 0755, less the umask); a folder
 *       that is there already is fine, a file in the way is ENOTDIR.
 *
 * Misuse (wrong types, a path longer than PATH_MAX - 8, a mode outside 0..0777, data over
 * 256 MiB) raises; failures of the system return nil, message (with strerror), code. */
#ifndef AWSNET_FILE_H
#define AWSNET_FILE_H

#include <lua.h>

void file_open(lua_State *L);

#endif
