/* awsnet.core.process — child processes and the SIGINT/SIGTERM flag, without a shell.
 *
 *   spawn(argv, opts) -> pid                 fork + execvp (opts: env, clear_env, cwd, stdin,
 *                                            stdout, stderr, group, session)
 *   capture(argv, opts) -> how, code, output like spawn with stdout and stderr read through a
 *                                            pipe, then reaped (opts also: timeout)
 *   wait(pid, timeout_s, interruptible) -> "exited", code | "signalled", signal
 *                                          | nil, "timeout" | nil, "interrupted", signal
 *   kill(pid, sig) -> true | nil, message    pid < 0 signals the process group -pid
 *   sleep(seconds, interruptible) -> true | false, signal (cut short by SIGINT or SIGTERM)
 *   interrupted() -> signal, name | nil      pid() -> this process's id
 *   signals.install{exit_status=} / signals.restore() / signals.note(text)
 *
 * Misuse raises (luaL_argerror); failures of the world return nil, message. "Interruptible"
 * calls return early once SIGINT or SIGTERM has arrived since signals.install(): the handlers
 * only record the signal, so the Lua code decides how to stop. */
#ifndef AWSNET_PROCESS_H
#define AWSNET_PROCESS_H

#include <lua.h>

void process_open(lua_State *L);

/* The SIGINT or SIGTERM received since signals.install() (0: none), for other primitives whose
 * loops should stop early too. */
int process_pending_signal(void);

#endif
