# genobatch attempt wrapper (POSIX sh; tested with dash and bash).
#
# Usage: [taskset -c CPUS] /bin/sh wrapper.sh ATTEMPT_DIR ENV CMD [ARG...]
#
# ENV is the path of a GNU env that understands --default-signal, or empty. A background command
# of a shell without job control starts with SIGINT and SIGQUIT ignored (POSIX), and the server's
# own ignored signals are inherited too; `env --default-signal` gives the command the default
# dispositions a freshly started container has, for one extra exec.
#
# Started by genobatch.backends.local in its own session (start_new_session), with the attempt's
# environment and ATTEMPT_DIR/work as working directory. It outlives a crash of the server, so
# everything the server needs afterwards is left as files in ATTEMPT_DIR:
#
#   wrapper.pid   this shell's pid (reconcile checks /proc/PID/cmdline names ATTEMPT_DIR)
#   child.pid     the command's pid, which is also its process group and session id
#   output.log    the command's stdout and stderr, combined
#   exit_status   written atomically (tmp + mv) once the command has been reaped:
#                 line 1 the exit code (128+N when killed by signal N), then "key=value" notes,
#                 the two lines of `times` (this shell, then its reaped children: the command
#                 tree's user and system cpu time) and this shell's /proc io counters as
#                 "key=value" (they include those of the reaped command tree)
#
# Only shell builtins run per attempt apart from setsid (which execs the command) and one mv,
# because every fork/exec here is paid thousands of times by short jobs.

d=$1
resetenv=$2
shift 2
log="$d/output.log"
child=
signals=0
stopping=

# Forward a termination request to the command's whole process group. The counter lets the
# wait loop below tell a wait cut short by this trap from the command's real exit.
forward() {
    signals=$((signals + 1))
    stopping=$1
    if [ -n "$child" ]; then
        kill -s "$1" -- "-$child" 2>/dev/null
    fi
}
trap 'forward TERM' TERM
trap 'forward INT' INT

echo $$ >"$d/wrapper.pid"

# Report the exit status atomically: a reader sees either no file or a complete one.
finish() {
    {
        echo "$1"
        [ -n "$2" ] && echo "status=$2"
        [ -n "$stopping" ] && echo "signal=$stopping"
        times
        if [ -r "/proc/$$/io" ]; then
            while read -r key value; do
                echo "${key%:}=$value"
            done <"/proc/$$/io"
        fi
    } >"$d/exit_status.tmp"
    mv -f "$d/exit_status.tmp" "$d/exit_status"
    exit "$1"
}

# An executable that cannot be found is a start failure (like a container's "exec failed"), not
# an exit of the command: say so explicitly so the server need not guess from 127.
if ! command -v "$1" >/dev/null 2>&1; then
    echo "genobatch: $1: executable file not found in \$PATH" >>"$log"
    finish 127 notfound
fi

# In a non-interactive shell a background job is not a process group leader, so setsid calls
# setsid(2) and execs the command without forking: $! is the command itself, the leader of a new
# session and process group that the server can signal (and measure) as a whole. (The group
# exists once setsid has run, a moment after $! is known; the server allows for that.)
if [ -n "$resetenv" ]; then
    setsid "$resetenv" --default-signal "$@" </dev/null >>"$log" 2>&1 &
else
    setsid "$@" </dev/null >>"$log" 2>&1 &
fi
child=$!
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
    kill -s "$stopping" -- "-$child" 2>/dev/null
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
