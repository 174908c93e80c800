# genobatch attempt wrapper (POSIX sh; tested with dash and bash).
#
# Usage: [taskset -c CPUS] /bin/sh wrapper.sh ATTEMPT_DIR ENV JOIN RUNAS CMD [ARG...]
#
# ENV is the path of a GNU env that understands --default-signal, or empty. A background command
# of a shell without job control starts with SIGINT and SIGQUIT ignored (POSIX), and the server's
# own ignored signals are inherited too; `env --default-signal` gives the command the default
# dispositions a freshly started container has, for one extra exec.
#
# JOIN is the cgroup.procs file of the attempt's cgroup, or empty. The forked child writes 0
# (itself) there before it execs the command, so the command and everything it ever starts are in
# the cgroup from their first instruction; this shell stays outside, so it outlives a kill of
# the whole cgroup and still records the exit status. If the child cannot join, it creates
# `cgroup_failed` and exits 125 without running anything (a start failure, not a job exit).
#
# RUNAS is "UID:GID" to run the command as that user (setpriv, with the user's groups), or empty.
#
# Started by genobatch.backends.local in its own session (start_new_session), with the attempt's
# environment and ATTEMPT_DIR/work as working directory. It outlives a crash of the server, so
# everything the server needs afterwards is left as files in ATTEMPT_DIR:
#
#   wrapper.pid   this shell's pid (reconcile checks /proc/PID/cmdline names ATTEMPT_DIR)
#   child.pid     the command's pid, which is also its process group and session id
#   output.log    the command's stdout and stderr, combined
#   exit_status   written once the command has been reaped: line 1 the exit code (128+N when
#                 killed by signal N), then "key=value" notes, the two lines of `times` (this
#                 shell, then its reaped children: the command tree's user and system cpu time),
#                 this shell's /proc io counters as "key=value" (they include those of the
#                 reaped command tree) and last a line "end". A record without that last line is
#                 incomplete (being written, or its writer was killed) and readers ignore it.
#
# Only shell builtins run here apart from setsid and env, which exec the command: every
# fork/exec is paid thousands of times by short jobs. That is why the exit status is completed by
# its "end" line rather than published with tmp + mv, which would cost a fork and an exec (about
# a quarter of the wrapper's CPU time) for the same guarantee to readers.

d=$1
resetenv=$2
join=$3
runas=$4
shift 4
log="$d/output.log"
child=
signals=0
stopping=

# Send a signal to the command's whole process group, or to the command alone while its group
# does not exist yet (it calls setsid a moment after the fork).
signal_child() {
    kill -s "$1" -- "-$child" 2>/dev/null || kill -s "$1" "$child" 2>/dev/null
}

# Forward a termination request to the command. The counter lets the wait loop below tell a wait
# cut short by this trap from the command's real exit.
forward() {
    signals=$((signals + 1))
    stopping=$1
    if [ -n "$child" ]; then
        signal_child "$1"
    fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT

echo $$ >"$d/wrapper.pid"

# Record the exit status; the final "end" line makes it valid (see above).
finish() {
    {
        echo "$1"
        [ -n "$2" ] && echo "status=$2"
        [ -n "$stopping" ] && echo "signal=$stopping"
        [ -e "$d/cgroup_failed" ] && echo "status=nocgroup"
        times
        if [ -r "/proc/$$/io" ]; then
            while read -r key value; do
                echo "${key%:}=$value"
            done <"/proc/$$/io"
        fi
        echo end
    } >"$d/exit_status"
    exit "$1"
}

# An executable that cannot be found is a start failure (like a container's "exec failed"), not
# an exit of the command: say so explicitly so the server need not guess from 127.
if ! command -v "$1" >/dev/null 2>&1; then
    echo "genobatch: $1: executable file not found in \$PATH" >>"$log"
    finish 127 notfound
fi

# The command line after setsid: [setpriv ... --] [env [-u LC_ALL] --default-signal] CMD.
# setsid, setpriv and env need no locale: LC_ALL=C spares them loading one (a third of their
# cost), and env takes it out again before the command starts.
lcall=
if [ -n "$resetenv" ] && [ -z "${LC_ALL+set}" ]; then
    set -- "$resetenv" -u LC_ALL --default-signal "$@"
    lcall=C
elif [ -n "$resetenv" ]; then
    set -- "$resetenv" --default-signal "$@"
fi
if [ -n "$runas" ]; then
    set -- setpriv --reuid="${runas%%:*}" --regid="${runas#*:}" --init-groups -- "$@"
fi

# In a non-interactive shell a background job is not a process group leader, so setsid calls
# setsid(2) and execs the command without forking: $! is the command itself, the leader of a new
# session and process group that the server can signal (and measure) as a whole. (The group
# exists once setsid has run, a moment after $! is known; the server allows for that.)
# Until it execs, the forked child runs this shell's trap handlers, which would swallow a signal
# the server sends it in that moment (its group does not exist yet, so it is signalled alone):
# fork with default dispositions and set the traps again right after.
trap - TERM INT
{
    if [ -n "$join" ] && ! echo 0 >"$join"; then
        echo "genobatch: cannot join the attempt's cgroup ($join); the command was not started"
        : >"$d/cgroup_failed"
        exit 125
    fi
    if [ -n "$lcall" ]; then
        export LC_ALL=C
    fi
    exec setsid "$@"
} </dev/null >>"$log" 2>&1 &
child=$!
trap 'forward TERM' TERM
trap 'forward INT' INT
echo "$child" >"$d/child.pid"
# Tell the server the command's pid, then let go of the pipe. SIGPIPE is ignored meanwhile (the
# command has already started, so it does not inherit that) so that a server that died since
# spawning us does not kill us before the exit status is recorded.
trap '' PIPE
echo "$child" 2>/dev/null
exec >/dev/null
trap - PIPE

# A signal that arrived before the child existed is forwarded now.
if [ -n "$stopping" ]; then
    signal_child "$stopping"
fi

# A wait interrupted by a trapped signal returns 128+signal while the child may still run; the
# shell remembers the status of a reaped background job, so waiting again is always safe. Stop
# only when a wait completed with no trap having run meanwhile.
while :; do
    seen=$signals
    wait "$child"
    rc=$?
    [ "$seen" = "$signals" ] && break
done
finish "$rc"
