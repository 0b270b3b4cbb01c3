/* awsnet.core.file: durable replacement of a small file and an exclusive lock on a path, the two
 * things a state file needs that plain Lua (io.open, os.rename) cannot do. Contract in file.h. */
#include "file.h"
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_MAX ((size_t)256 * 1024 * 1024)
#define PATH_ROOM (PATH_MAX - 8) /* room for the ".tmp" and ".lock" suffixes */
#define LOCK_TRIES 8
#define LOCK_MT "awsnet.file.lock"

/* A held lock: the open file carrying the flock, and the path to remove on release. */
typedef struct {
    int fd;         /* -1 once released */
    char path[];
} file_lock;

static int fail(lua_State *L, const char *what, const char *path, int e, const char *code)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: %s", what, path, strerror(e));
    lua_pushstring(L, code);
    return 3;
}

static const char *check_path(lua_State *L, int idx)
{
    size_t len;
    const char *path = luaL_checklstring(L, idx, &len);
    luaL_argcheck(L, len > 0 && len < PATH_ROOM && strlen(path) == len, idx,
                  "path must be 1 to PATH_MAX - 9 bytes with no NUL");
    return path;
}

/* The folder holding `path` ("." for a bare name), into `dir` of PATH_MAX bytes. */
static void folder_of(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync of a folder, so that a rename in it survives a crash. File systems that cannot sync a
 * folder say EINVAL: nothing more can be done there. */
static int sync_folder(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc < 0 && e != EINVAL) {
        errno = e;
        return -1;
    }
    return 0;
}

/* write_atomic(path, data[, mode]) -> true | nil, message, code ("exists" or "io") */
static int l_write_atomic(lua_State *L)
{
    const char *path = check_path(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_Integer mode = luaL_optinteger(L, 3, 0600);
    luaL_argcheck(L, len <= DATA_MAX, 2, "data larger than 256 MiB");
    luaL_argcheck(L, mode >= 0 && mode <= 0777, 3, "mode must be between 0 and 0777");
    char tmp[PATH_MAX], dir[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    folder_of(path, dir);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail(L, "cannot create", tmp, errno, errno == EEXIST ? "exists" : "io");
    const char *what = NULL;
    if (fchmod(fd, (mode_t)mode) < 0) what = "cannot set the mode of";
    else if (write_all(fd, data, len) < 0) what = "cannot write";
    else if (fsync(fd) < 0) what = "cannot sync";
    int e = errno;
    if (close(fd) < 0 && what == NULL) {
        what = "cannot close";
        e = errno;
    }
    if (what == NULL && rename(tmp, path) < 0) {
        what = "cannot rename";
        e = errno;
    }
    if (what != NULL) {
        unlink(tmp);
        return fail(L, what, tmp, e, "io");
    }
    if (sync_folder(dir) < 0) return fail(L, "cannot sync the folder", dir, errno, "io");
    lua_pushboolean(L, 1);
    return 1;
}

/* Releases a lock: removes its file while still holding it (a process that opened the file
 * meanwhile sees it is no longer the one at the path, and retries), then closes it. */
static int lock_close(lua_State *L)
{
    file_lock *lk = luaL_checkudata(L, 1, LOCK_MT);
    if (lk->fd >= 0) {
        unlink(lk->path);
        close(lk->fd);
        lk->fd = -1;
    }
    return 0;
}

/* True while `fd` is the file at `path` (not one its holder removed after we opened it). */
static int still_at_path(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The process id, as the lock file's content, for the message of a run refused by the lock.
 * Best effort: the lock holds without it. */
static void note_pid(int fd)
{
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, text, (size_t)n, 0) == n) return;
}

/* lock(path) -> handle | nil, message, code ("locked" or "io") */
/* file.mkdir(path[, mode]) -> true, or nil, message, "io": the folder and its missing parents
 * (mode for each made, default 0755, less the umask); one that exists is fine. A snapshot makes a
 * folder per account and region: without a process for each. */
static int l_mkdir(lua_State *L)
{
    const char *path = check_path(L, 1);
    lua_Integer mode = luaL_optinteger(L, 2, 0755);
    luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode out of range");
    char buf[PATH_MAX];
    size_t len = strlen(path);
    memcpy(buf, path, len + 1);
    /* each parent in turn, then the folder itself */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, (mode_t)mode) != 0 && errno != EEXIST) return fail(L, "cannot make folder", buf, errno, "io");
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0) return fail(L, "cannot make folder", path, errno, "io");
    if (!S_ISDIR(st.st_mode)) return fail(L, "cannot make folder", path, ENOTDIR, "io");
    lua_pushboolean(L, 1);
    return 1;
}

static int l_lock(lua_State *L)
{
    const char *path = check_path(L, 1);
    size_t len = strlen(path);
    /* the handle first, so that no descriptor leaks if memory runs out */
    file_lock *lk = lua_newuserdatauv(L, sizeof *lk + len + 1, 0);
    lk->fd = -1;
    memcpy(lk->path, path, len + 1);
    luaL_setmetatable(L, LOCK_MT);
    for (int tries = 0; tries < LOCK_TRIES; tries++) {
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return fail(L, "cannot open", path, errno, "io");
        int rc;
        do rc = flock(fd, LOCK_EX | LOCK_NB); while (rc < 0 && errno == EINTR);
        if (rc < 0) {
            int e = errno;
            close(fd);
            return fail(L, e == EWOULDBLOCK ? "another run holds" : "cannot lock", path, e,
                        e == EWOULDBLOCK ? "locked" : "io");
        }
        if (still_at_path(fd, path)) {
            lk->fd = fd;
            note_pid(fd);
            return 1;
        }
        close(fd);
    }
    return fail(L, "cannot lock", path, EAGAIN, "io");
}

void file_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "write_atomic", l_write_atomic }, { "lock", l_lock }, { "mkdir", l_mkdir }, { NULL, NULL },
    };
    static const luaL_Reg lock_methods[] = { { "close", lock_close }, { NULL, NULL } };
    core_handle_type(L, LOCK_MT, lock_methods, lock_close);
    core_register(L, "file", funcs);
}
