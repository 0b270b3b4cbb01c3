/* awsnet.core.process: fork/exec, waitpid, kill and sleeps that SIGINT and SIGTERM cut short.
 * The Lua layer (awsnet.svc.process) decides what to start, how long to wait and what to stop;
 * this file only does it without a shell in between. Contract in process.h. */
#include "process.h"
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ARGV_MAX 4096
#define ENV_MAX 4096
#define SECONDS_MAX 1e7
#define CAPTURE_MAX ((size_t)64 * 1024 * 1024)
#define NOTE_MAX 400
#define NS 1000000000LL

/* Process-wide on purpose. A signal handler receives no lua_State and may only store to a
 * volatile sig_atomic_t, so the signal received has to live in one static variable. The other
 * statics describe the process too (its dispositions, its atexit hook and exit status), so a
 * copy per Lua state would only disagree with the kernel. Only the Lua thread writes them,
 * outside the handler. */
static volatile sig_atomic_t pending_signal;
static struct sigaction saved_int, saved_term;
static int installed, exit_armed, exit_hooked;
static char exit_note[NOTE_MAX];

static const struct {
    const char *name;
    int sig;
} SIGNALS[] = {
    { "SIGHUP", SIGHUP }, { "SIGINT", SIGINT }, { "SIGQUIT", SIGQUIT }, { "SIGKILL", SIGKILL },
    { "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGPIPE", SIGPIPE }, { "SIGALRM", SIGALRM },
    { "SIGTERM", SIGTERM }, { "SIGCHLD", SIGCHLD }, { "SIGCONT", SIGCONT }, { "SIGSTOP", SIGSTOP },
    { "SIGTSTP", SIGTSTP },
};

static const char *signal_name(int sig)
{
    for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
        if (SIGNALS[i].sig == sig) return SIGNALS[i].name;
    return "signal";
}

static void on_signal(int sig)
{
    pending_signal = sig;
}

int process_pending_signal(void)
{
    return (int)pending_signal;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Waits up to `ns` for `fd` (-1: none) to become readable. When `interruptible`, SIGINT and
 * SIGTERM stay blocked while the flag is read and are unblocked only inside ppoll, so a signal
 * that lands between the check and the wait still ends the wait. Returns the pending signal
 * (interruptible only) or 0; an early return for any other reason is the caller's to loop on. */
static int pause_for(int fd, int64_t ns, int interruptible)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    nfds_t n = fd >= 0 ? 1 : 0;
    if (ns < 0) ns = 0;
    struct timespec ts = { (time_t)(ns / NS), (long)(ns % NS) };
    if (!interruptible) {
        ppoll(n ? &pfd : NULL, n, &ts, NULL);
        return 0;
    }
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    int sig = pending_signal;
    if (!sig) {
        sigset_t during = old;
        sigdelset(&during, SIGINT);
        sigdelset(&during, SIGTERM);
        ppoll(n ? &pfd : NULL, n, &ts, &during);
        sig = pending_signal;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return sig;
}

/* ---- arguments ---------------------------------------------------------------------------- */

static lua_Number check_seconds(lua_State *L, int idx)
{
    lua_Number s = luaL_checknumber(L, idx);
    luaL_argcheck(L, s >= 0 && s <= SECONDS_MAX, idx, "seconds must be between 0 and 1e7");
    return s;
}

static int opt_flag(lua_State *L, int idx, int dflt)
{
    if (lua_isnoneornil(L, idx)) return dflt;
    luaL_checktype(L, idx, LUA_TBOOLEAN);
    return lua_toboolean(L, idx);
}

static int check_signal(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *name = lua_tostring(L, idx);
        const char *bare = strncmp(name, "SIG", 3) == 0 ? name + 3 : name;
        for (size_t i = 0; i < sizeof SIGNALS / sizeof SIGNALS[0]; i++)
            if (strcmp(SIGNALS[i].name + 3, bare) == 0) return SIGNALS[i].sig;
        return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
    }
    lua_Integer sig = luaL_checkinteger(L, idx);
    luaL_argcheck(L, sig >= 0 && sig < NSIG, idx, "signal number out of range");
    return (int)sig;
}

/* opts[name] read raw (the table keeps the value alive); nil when absent. */
static int opt_field(lua_State *L, int oi, const char *name)
{
    if (oi == 0) {
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_pushstring(L, name);
    return lua_rawget(L, oi);
}

static const char *opt_string(lua_State *L, int oi, const char *name)
{
    const char *s = NULL;
    int t = opt_field(L, oi, name);
    if (t != LUA_TNIL) {
        size_t len;
        if (t != LUA_TSTRING || (s = lua_tolstring(L, -1, &len)) == NULL || len == 0 || strlen(s) != len)
            luaL_argerror(L, oi, lua_pushfstring(L, "opts.%s must be a non-empty string without NUL", name));
    }
    lua_pop(L, 1);
    return s;
}

static int opt_bool(lua_State *L, int oi, const char *name)
{
    int t = opt_field(L, oi, name);
    if (t != LUA_TNIL && t != LUA_TBOOLEAN)
        luaL_argerror(L, oi, lua_pushfstring(L, "opts.%s must be a boolean", name));
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

static void check_option_names(lua_State *L, int oi, const char *const *allowed)
{
    lua_pushnil(L);
    while (lua_next(L, oi)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, oi, "option names must be strings");
        const char *k = lua_tostring(L, -1);
        int known = 0;
        for (const char *const *a = allowed; *a; a++) known |= strcmp(*a, k) == 0;
        if (!known) luaL_argerror(L, oi, lua_pushfstring(L, "unknown option '%s'", k));
    }
}

static int string_ok(lua_State *L, int idx, int allow_equals)
{
    size_t len;
    if (lua_type(L, idx) != LUA_TSTRING) return 0;
    const char *s = lua_tolstring(L, idx, &len);
    return strlen(s) == len && (allow_equals || (len > 0 && strchr(s, '=') == NULL));
}

/* ---- the child ---------------------------------------------------------------------------- */

typedef struct {
    const char **argv;  /* NULL-terminated; the strings belong to the argv table */
    char **envp;        /* NULL: this process's environment */
    const char *cwd;
    int fd[3];          /* what the child gets as 0, 1, 2 (-1: inherited) */
    int group, session; /* setpgid(0, 0) / setsid() in the child */
    int max_fd;         /* bound for closing inherited descriptors without close_range */
} child_plan;

/* argv at `ai`: 1 to ARGV_MAX strings; the pointer array is a userdata left on the stack. */
static const char **check_argv(lua_State *L, int ai)
{
    luaL_checktype(L, ai, LUA_TTABLE);
    size_t n = lua_rawlen(L, ai);
    luaL_argcheck(L, n >= 1 && n <= ARGV_MAX, ai, "argv must hold 1 to 4096 strings");
    const char **argv = lua_newuserdatauv(L, (n + 1) * sizeof *argv, 0);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, ai, (lua_Integer)i + 1);
        if (!string_ok(L, -1, 1)) luaL_argerror(L, ai, "argv entries must be strings without NUL");
        argv[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the argv table keeps it */
    }
    argv[n] = NULL;
    return argv;
}

/* The child's environment when opts.env or opts.clear_env ask for a change, else NULL: this
 * process's environment (none with clear_env) without the names opts.env mentions, then the
 * names it sets to a string (false removes a name). Array and "NAME=value" strings live in one
 * userdata left on the stack (with the env table). */
static char **build_env(lua_State *L, int oi)
{
    int clear = opt_bool(L, oi, "clear_env");
    int t = opt_field(L, oi, "env");
    if (t == LUA_TNIL && !clear) {
        lua_pop(L, 1);
        return NULL;
    }
    if (t != LUA_TNIL && t != LUA_TTABLE) luaL_argerror(L, oi, "opts.env must be a table");
    int et = t == LUA_TTABLE ? lua_gettop(L) : 0;
    size_t sets = 0, bytes = 0, inherited = 0;
    if (et) {
        lua_pushnil(L);
        while (lua_next(L, et)) {
            if (!string_ok(L, -2, 0)) luaL_argerror(L, oi, "opts.env names must be non-empty strings without '='");
            int vt = lua_type(L, -1);
            if (vt == LUA_TSTRING && string_ok(L, -1, 1)) {
                sets++;
                bytes += lua_rawlen(L, -2) + lua_rawlen(L, -1) + 2;
            } else if (!(vt == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
                luaL_argerror(L, oi, "opts.env values must be strings without NUL, or false");
            }
            lua_pop(L, 1);
            luaL_argcheck(L, sets <= ENV_MAX, oi, "opts.env is too large");
        }
    }
    if (!clear)
        for (char **e = environ; *e; e++) inherited++;
    char **envp = lua_newuserdatauv(L, (inherited + sets + 1) * sizeof *envp + bytes, 0);
    char *text = (char *)(envp + inherited + sets + 1);
    size_t n = 0;
    if (!clear) {
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (et && eq) {
                lua_pushlstring(L, *e, (size_t)(eq - *e));
                int overridden = lua_rawget(L, et) != LUA_TNIL;
                lua_pop(L, 1);
                if (overridden) continue;
            }
            envp[n++] = *e;
        }
    }
    if (et) {
        lua_pushnil(L);
        while (lua_next(L, et)) {
            if (lua_type(L, -1) == LUA_TSTRING) {
                size_t klen, vlen;
                const char *k = lua_tolstring(L, -2, &klen), *v = lua_tolstring(L, -1, &vlen);
                envp[n++] = text;
                memcpy(text, k, klen);
                text[klen] = '=';
                memcpy(text + klen + 1, v, vlen + 1);
                text += klen + vlen + 2;
            }
            lua_pop(L, 1);
        }
    }
    envp[n] = NULL;
    return envp;
}

/* Checks argv (index ai) and opts (index oi, 0 when absent) and fills `p` and the paths of the
 * standard streams (NULL: inherited). Raises on misuse before anything is opened. */
static void plan_child(lua_State *L, int ai, int oi, const char *const *allowed, child_plan *p,
                       const char *stdio[3])
{
    if (oi) check_option_names(L, oi, allowed);
    p->argv = check_argv(L, ai);
    p->envp = build_env(L, oi);
    p->cwd = opt_string(L, oi, "cwd");
    stdio[0] = opt_string(L, oi, "stdin");
    stdio[1] = opt_string(L, oi, "stdout");
    stdio[2] = opt_string(L, oi, "stderr");
    p->group = opt_bool(L, oi, "group");
    p->session = opt_bool(L, oi, "session");
    p->fd[0] = p->fd[1] = p->fd[2] = -1;
    long open_max = sysconf(_SC_OPEN_MAX);
    p->max_fd = open_max > 0 && open_max < 65536 ? (int)open_max : 65536;
}

/* A close-on-exec descriptor numbered 3 or more, so that the child's dup2 onto 0-2 can never
 * overwrite another of its sources. Takes `fd`; returns the new one or -1 (errno kept). */
static int high_fd(int fd)
{
    if (fd < 0 || fd >= 3) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return moved;
}

static int open_stream(const char *path, int target)
{
    int flags = target == 0 ? O_RDONLY : (O_WRONLY | O_CREAT | O_APPEND);
    return high_fd(open(path, flags | O_CLOEXEC | O_NOCTTY, 0600));
}

static void close_fds(int fd[3])
{
    for (int i = 0; i < 3; i++) {
        if (fd[i] >= 0 && (i == 0 || fd[i] != fd[i - 1])) close(fd[i]);
        fd[i] = -1;
    }
}

/* Opens the standard streams the plan names; returns -1, or on failure the index of the stream
 * that could not be opened, with errno set and nothing left open. */
static int open_streams(child_plan *p, const char *const stdio[3])
{
    for (int i = 0; i < 3; i++) {
        if (!stdio[i]) continue;
        p->fd[i] = open_stream(stdio[i], i);
        if (p->fd[i] < 0) {
            int e = errno;
            close_fds(p->fd);
            errno = e;
            return i;
        }
    }
    return -1;
}

/* In the child after fork: async-signal-safe calls only, then exec. On failure the errno goes
 * to the parent through `report` (close-on-exec, so a successful exec closes it silently). */
static void child_fail(int report)
{
    int e = errno;
    ssize_t ignored = write(report, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

/* Closes every descriptor from 3 up but `keep` (3 or more). */
static void close_inherited(int keep, int max_fd)
{
    if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) == 0 && close_range((unsigned)keep + 1, ~0U, 0) == 0)
        return;
    if (keep == 3 && close_range(4, ~0U, 0) == 0) return;
    for (int fd = 3; fd < max_fd; fd++)
        if (fd != keep) close(fd);
}

static void child_exec(const child_plan *p, int report)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, NULL); /* fails harmlessly for KILL, STOP */
    if (p->session && setsid() < 0) child_fail(report);
    if (!p->session && p->group && setpgid(0, 0) < 0) child_fail(report);
    for (int i = 0; i < 3; i++)
        if (p->fd[i] >= 0 && dup2(p->fd[i], i) < 0) child_fail(report);
    if (p->cwd && chdir(p->cwd) < 0) child_fail(report);
    close_inherited(report, p->max_fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (p->envp) execvpe(p->argv[0], (char *const *)p->argv, p->envp);
    else execvp(p->argv[0], (char *const *)p->argv);
    child_fail(report);
}

/* Forks and execs; returns the pid once the child has exec'd (its group or session exists by
 * then), or -1 with *err set. Every signal is blocked across fork, so a signal meant for the new
 * child waits until it runs with default dispositions instead of reaching our handler's copy. */
static pid_t start_child(const child_plan *p, int *err)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0) {
        *err = errno;
        return -1;
    }
    if ((report[0] = high_fd(report[0])) < 0 || (report[1] = high_fd(report[1])) < 0) {
        *err = errno;
        if (report[0] >= 0) close(report[0]);
        if (report[1] >= 0) close(report[1]);
        return -1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) child_exec(p, report[1]);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        *err = fork_errno;
        return -1;
    }
    int child_errno = 0;
    ssize_t n;
    do n = read(report[0], &child_errno, sizeof child_errno);
    while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        *err = child_errno;
        return -1;
    }
    return pid;
}

static int fail_message(lua_State *L, const char *what, const char *detail, int e)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, e ? strerror(e) : detail);
    return 2;
}

/* Reaps `pid` if it has ended: 1 (with *status), 0 while it runs, -1 with errno. */
static int reap(pid_t pid, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 1;
        if (r == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

static int push_status(lua_State *L, int status)
{
    if (WIFEXITED(status)) {
        lua_pushliteral(L, "exited");
        lua_pushinteger(L, WEXITSTATUS(status));
    } else {
        lua_pushliteral(L, "signalled");
        lua_pushinteger(L, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    return 2;
}

/* A pipe's read end (close-on-exec, numbered 3 or more) holding `data` already written, its
 * write end closed: the child reads the data, then end of file, and the parent never blocks. */
#define STDIN_DATA_MAX 65536
static int pipe_with(const char *data, size_t len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return -1;
    /* a pipe may start with one page only (pipe-user-pages-soft): ask for room, best effort */
    if (len > 4096) (void)fcntl(fds[1], F_SETPIPE_SZ, (int)len);
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fds[1], data + done, len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EPIPE;
            close(fds[0]);
            close(fds[1]);
            errno = e;
            return -1;
        }
        done += (size_t)n;
    }
    close(fds[1]);
    /* the child reads it blocking, as any stdin */
    int flags = fcntl(fds[0], F_GETFL);
    if (flags < 0 || fcntl(fds[0], F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fds[0]);
        errno = e;
        return -1;
    }
    return high_fd(fds[0]);
}

/* ---- functions ---------------------------------------------------------------------------- */

/* spawn(argv, opts) -> pid | nil, message
 * opts: env = {NAME = "value" | false} over this process's environment (clear_env = true: over
 * none), cwd, stdin (a path, read), stdin_data (a string of at most 64 KiB the child reads on its
 * stdin from a pipe: secrets reach it without a file or its command line), stdout and stderr
 * (paths, appended to, created 0600; absent:
 * inherited), group = true (its own process group), session = true (setsid). The child starts
 * with default signal dispositions, an empty signal mask and only fds 0-2 open. */
static int l_spawn(lua_State *L)
{
    static const char *const allowed[] = { "env", "clear_env", "cwd", "stdin", "stdin_data", "stdout", "stderr",
                                           "group", "session", NULL };
    int oi = lua_isnoneornil(L, 2) ? 0 : (luaL_checktype(L, 2, LUA_TTABLE), 2);
    child_plan p;
    const char *stdio[3];
    plan_child(L, 1, oi, allowed, &p, stdio);
    size_t data_len = 0;
    const char *data = NULL;
    if (opt_field(L, oi, "stdin_data") != LUA_TNIL) {
        luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING, oi, "opts.stdin_data must be a string");
        data = lua_tolstring(L, -1, &data_len); /* opts keeps it alive */
        luaL_argcheck(L, data_len <= STDIN_DATA_MAX, oi, "opts.stdin_data is larger than a pipe holds (64 KiB)");
        luaL_argcheck(L, stdio[0] == NULL, oi, "opts.stdin and opts.stdin_data exclude each other");
    }
    lua_pop(L, 1);
    int bad = open_streams(&p, stdio);
    if (bad >= 0) return fail_message(L, lua_pushfstring(L, "cannot open %s", stdio[bad]), NULL, errno);
    if (data && (p.fd[0] = pipe_with(data, data_len)) < 0) {
        int e = errno;
        close_fds(p.fd);
        return fail_message(L, "cannot pass stdin_data", NULL, e);
    }
    int err = 0;
    pid_t pid = start_child(&p, &err);
    close_fds(p.fd);
    if (pid < 0) return fail_message(L, lua_pushfstring(L, "cannot run %s", p.argv[0]), NULL, err);
    lua_pushinteger(L, pid);
    return 1;
}

#define OUTBUF_MT "awsnet.process.output"

/* The captured output, in a userdata whose __gc frees it, so that a raise while pushing the
 * result cannot leak it. */
typedef struct {
    char *data;
    size_t len, cap;
} outbuf;

static int outbuf_free(lua_State *L)
{
    outbuf *b = luaL_checkudata(L, 1, OUTBUF_MT);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return 0;
}

static void out_append(outbuf *b, const char *s, size_t n)
{
    if (b->len + n > CAPTURE_MAX) n = CAPTURE_MAX - b->len;
    if (n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) return; /* out of memory: the rest of the output is dropped */
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Reads what the pipe holds now; returns 0 once it is closed, 1 while it stays open. */
static int drain(int fd, outbuf *b)
{
    char chunk[16384];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0) {
            out_append(b, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* capture(argv, opts) -> "exited", code, output | "signalled", signal, output
 *                      | nil, "timeout", output | nil, "interrupted", output, signal | nil, message
 * Runs argv in its own process group with stdout and stderr into one pipe (output up to 64 MiB
 * kept) and stdin from opts.stdin or /dev/null. opts: env, clear_env, cwd, stdin as for spawn;
 * timeout (seconds); interruptible (default true). On timeout or interrupt the whole group gets
 * SIGKILL and is reaped before the call returns. */
static int l_capture(lua_State *L)
{
    static const char *const allowed[] = { "env", "clear_env", "cwd", "stdin", "timeout", "interruptible", NULL };
    int oi = lua_isnoneornil(L, 2) ? 0 : (luaL_checktype(L, 2, LUA_TTABLE), 2);
    child_plan p;
    const char *stdio[3];
    plan_child(L, 1, oi, allowed, &p, stdio);
    int64_t deadline = INT64_MAX;
    if (opt_field(L, oi, "timeout") != LUA_TNIL) {
        lua_Number t = lua_tonumber(L, -1);
        luaL_argcheck(L, lua_type(L, -1) == LUA_TNUMBER && t >= 0 && t <= SECONDS_MAX, oi,
                      "opts.timeout must be seconds between 0 and 1e7");
        deadline = now_ns() + (int64_t)(t * (lua_Number)NS);
    }
    lua_pop(L, 1);
    int absent = opt_field(L, oi, "interruptible") == LUA_TNIL;
    lua_pop(L, 1);
    int interruptible = absent || opt_bool(L, oi, "interruptible");
    outbuf *b = lua_newuserdatauv(L, sizeof *b, 0);
    *b = (outbuf){ NULL, 0, 0 };
    luaL_setmetatable(L, OUTBUF_MT);
    p.group = 1;
    if (!stdio[0]) stdio[0] = "/dev/null";
    int bad = open_streams(&p, stdio);
    if (bad >= 0) return fail_message(L, lua_pushfstring(L, "cannot open %s", stdio[bad]), NULL, errno);
    int out[2] = { -1, -1 };
    if (pipe2(out, O_CLOEXEC) == 0) {
        out[0] = high_fd(out[0]);
        out[1] = high_fd(out[1]);
    }
    if (out[0] < 0 || out[1] < 0) {
        int e = errno;
        if (out[0] >= 0) close(out[0]);
        if (out[1] >= 0) close(out[1]);
        close_fds(p.fd);
        return fail_message(L, "pipe", NULL, e);
    }
    p.fd[1] = p.fd[2] = out[1];
    int err = 0;
    pid_t pid = start_child(&p, &err);
    close_fds(p.fd);
    if (pid < 0) {
        close(out[0]);
        return fail_message(L, lua_pushfstring(L, "cannot run %s", p.argv[0]), NULL, err);
    }
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    int open = 1, status = 0, sig = 0, reaped = 0, lost = 0;
    const char *why = NULL;
    int64_t step = 1000000;
    for (;;) {
        int r = reap(pid, &status);
        if (r != 0) {
            reaped = 1;
            lost = r < 0 ? errno : 0;
        }
        if (open) open = drain(out[0], b); /* after reaping, so that nothing the child wrote is missed */
        if (reaped) break;                  /* a grandchild holding the pipe is not waited for */
        sig = interruptible ? (int)pending_signal : 0;
        if (sig) why = "interrupted";
        int64_t left = deadline - now_ns();
        if (!why && left <= 0) why = "timeout";
        if (why) break;
        int64_t wait = open ? 50000000 : step;
        pause_for(open ? out[0] : -1, left < wait ? left : wait, interruptible);
        if (!open && step < 25000000) step *= 2;
    }
    if (why) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (open) drain(out[0], b);
    }
    close(out[0]);
    int results;
    if (why) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        results = 2;
    } else if (lost) {
        lua_pushnil(L);
        lua_pushfstring(L, "waitpid: %s", strerror(lost));
        results = 2;
    } else {
        results = push_status(L, status);
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len); /* a raise here leaves b to __gc */
    free(b->data);
    b->data = NULL;
    if (why && sig) {
        lua_pushinteger(L, sig);
        return results + 2;
    }
    return results + 1;
}

/* wait(pid, timeout_s, interruptible) -> "exited", code | "signalled", signal | nil, "timeout"
 * | nil, "interrupted", signal | nil, message. pid: a child of this process. timeout nil: no
 * limit; 0: just look. interruptible (default true): return once SIGINT or SIGTERM is pending. */
static int l_wait(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid > 0 && pid <= INT_MAX, 1, "pid must be a positive process id");
    int64_t deadline = lua_isnoneornil(L, 2) ? INT64_MAX : now_ns() + (int64_t)(check_seconds(L, 2) * (lua_Number)NS);
    int interruptible = opt_flag(L, 3, 1);
    int64_t step = 1000000; /* 1 ms, doubling to 25 ms: a child that ends soon is seen soon */
    for (;;) {
        int status;
        int r = reap((pid_t)pid, &status);
        if (r > 0) return push_status(L, status);
        if (r < 0) return fail_message(L, "waitpid", NULL, errno);
        int sig = interruptible ? (int)pending_signal : 0;
        if (sig) {
            lua_pushnil(L);
            lua_pushliteral(L, "interrupted");
            lua_pushinteger(L, sig);
            return 3;
        }
        int64_t left = deadline - now_ns();
        if (left <= 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "timeout");
            return 2;
        }
        pause_for(-1, left < step ? left : step, interruptible);
        if (step < 25000000) step *= 2;
    }
}

/* kill(pid, sig) -> true | nil, message, "gone" | "denied" | "failed". pid < 0 signals the
 * process group -pid; 0 and -1 (own group, every process) are refused. sig: a number or a name
 * such as "TERM" or "SIGKILL". */
static int l_kill(lua_State *L)
{
    lua_Integer pid = luaL_checkinteger(L, 1);
    luaL_argcheck(L, pid != 0 && pid != -1 && pid >= -INT_MAX && pid <= INT_MAX, 1,
                  "not a process id or a negated process group id");
    int sig = check_signal(L, 2);
    if (kill((pid_t)pid, sig) == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    int e = errno;
    lua_pushnil(L);
    lua_pushstring(L, strerror(e));
    lua_pushstring(L, e == ESRCH ? "gone" : e == EPERM ? "denied" : "failed");
    return 3;
}

/* sleep(seconds, interruptible) -> true | false, signal. interruptible (default true): returns
 * early, or at once, when SIGINT or SIGTERM is pending. */
static int l_sleep(lua_State *L)
{
    int64_t deadline = now_ns() + (int64_t)(check_seconds(L, 1) * (lua_Number)NS);
    int interruptible = opt_flag(L, 2, 1);
    for (;;) {
        int sig = interruptible ? (int)pending_signal : 0;
        if (sig) {
            lua_pushboolean(L, 0);
            lua_pushinteger(L, sig);
            return 2;
        }
        int64_t left = deadline - now_ns();
        if (left <= 0) break;
        pause_for(-1, left, interruptible);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* interrupted() -> signal, name ("SIGINT" or "SIGTERM") | nil */
static int l_interrupted(lua_State *L)
{
    int sig = pending_signal;
    if (!sig) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, sig);
    lua_pushstring(L, signal_name(sig));
    return 2;
}

static int l_pid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* ---- signals ------------------------------------------------------------------------------ */

/* After an interrupt, whatever status the program exits with becomes 128 + the signal, with one
 * line on stderr. _exit from an atexit function is allowed and ends the remaining exit work,
 * so the stdio buffers are flushed first. */
static void exit_hook(void)
{
    int sig = pending_signal;
    if (!exit_armed || !sig) return;
    fflush(NULL);
    char line[NOTE_MAX + 64];
    int n = snprintf(line, sizeof line, "awsnet: interrupted by %s%s%s\n", signal_name(sig),
                     exit_note[0] ? "; " : "", exit_note);
    if (n > 0) {
        ssize_t ignored = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)ignored;
    }
    _exit(128 + sig);
}

/* signals.install{exit_status = bool} -> true | nil, message
 * SIGINT and SIGTERM then only record the signal (interrupted()); without SA_RESTART, so a
 * blocking call returns EINTR and its loop can look. A SIGINT ignored at startup (a background
 * job) stays ignored. exit_status = true: after an interrupt the process exits with 128 + the
 * signal and prints "awsnet: interrupted by SIG...; <note>" on stderr. */
static int l_install(lua_State *L)
{
    int want_exit = 0;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        lua_getfield(L, 1, "exit_status");
        luaL_argcheck(L, lua_isnil(L, -1) || lua_isboolean(L, -1), 1, "exit_status must be a boolean");
        want_exit = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        if (sigaction(SIGINT, &sa, &saved_int) < 0) return fail_message(L, "sigaction", NULL, errno);
        if (saved_int.sa_handler == SIG_IGN) sigaction(SIGINT, &saved_int, NULL);
        if (sigaction(SIGTERM, &sa, &saved_term) < 0) {
            int e = errno;
            sigaction(SIGINT, &saved_int, NULL);
            return fail_message(L, "sigaction", NULL, e);
        }
        installed = 1;
    }
    if (want_exit) {
        if (!exit_hooked) {
            if (atexit(exit_hook) != 0) return fail_message(L, "atexit", "cannot register", 0);
            exit_hooked = 1;
        }
        exit_armed = 1;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* signals.restore(): the dispositions from before install, no pending signal, no exit status. */
static int l_restore(lua_State *L)
{
    if (installed) {
        sigaction(SIGINT, &saved_int, NULL);
        sigaction(SIGTERM, &saved_term, NULL);
        installed = 0;
    }
    exit_armed = 0;
    pending_signal = 0;
    exit_note[0] = '\0';
    lua_pushboolean(L, 1);
    return 1;
}

/* signals.note(text): what the exit line says was left consistent (one line, up to 399 bytes;
 * control characters become spaces). */
static int l_note(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    if (len > NOTE_MAX - 1) len = NOTE_MAX - 1;
    for (size_t i = 0; i < len; i++) exit_note[i] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
    exit_note[len] = '\0';
    return 0;
}

void process_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "spawn", l_spawn }, { "capture", l_capture }, { "wait", l_wait }, { "kill", l_kill },
        { "sleep", l_sleep }, { "interrupted", l_interrupted }, { "pid", l_pid }, { NULL, NULL },
    };
    static const luaL_Reg signal_funcs[] = {
        { "install", l_install }, { "restore", l_restore }, { "note", l_note }, { NULL, NULL },
    };
    core_handle_type(L, OUTBUF_MT, NULL, outbuf_free);
    core_register(L, "process", funcs);
    lua_getfield(L, -1, "process");
    core_register(L, "signals", signal_funcs);
    lua_pop(L, 1);
}
