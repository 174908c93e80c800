#!/usr/bin/env bash
# A private single-node Slurm cluster for genobatch's Slurm backend: its tests, its benchmark and
# anyone who wants to try a Slurm compute environment on one machine.
#
#   scripts/slurm-cluster.sh start    install what is missing (Debian), configure, start; no-op if up
#   scripts/slurm-cluster.sh stop     stop every daemon of this cluster (job state is kept)
#   scripts/slurm-cluster.sh status   say which daemons run; exit 0 only when the node takes jobs
#   scripts/slurm-cluster.sh env      print `export SLURM_CONF=...` (eval it to use the cluster)
#   scripts/slurm-cluster.sh purge    stop, end the jobs' leftover processes, delete the directory
#
# Everything (configuration, munge key and socket, state, spool, logs, the accounting database)
# lives in one directory: $GENOBATCH_SLURM_DIR, default /var/tmp/genobatch-slurm. Slurm's clients
# find the cluster through SLURM_CONF=$GENOBATCH_SLURM_DIR/etc/slurm.conf (`start` and `env` print
# it). Runs as root without systemd: munged (as user munge), MariaDB + slurmdbd (accounting, so
# that `sacct` reports CPU time, MaxRSS and elapsed), slurmctld and slurmd.
#
# Knobs (environment): GENOBATCH_SLURM_PORT (slurmctld's port, default 6817; slurmd, slurmdbd and
# MariaDB take the next three), GENOBATCH_SLURM_CPUS (default: nproc, at least 16),
# GENOBATCH_SLURM_GPUS (fake GPUs through gres, default 4), GENOBATCH_SLURM_ACCOUNTING (yes|no,
# default yes), GENOBATCH_SLURM_CGROUP (yes|no, default yes: task/cgroup hard memory limits).
# They take effect at start; `start` on a running cluster changes nothing.
set -euo pipefail

DIR=${GENOBATCH_SLURM_DIR:-/var/tmp/genobatch-slurm}
PORT=${GENOBATCH_SLURM_PORT:-6817}
SLURMD_PORT=$((PORT + 1))
DBD_PORT=$((PORT + 2))
MYSQL_PORT=$((PORT + 3))
# The node offers at least 16 CPUs even on a smaller host (slurmd accepts it with
# SlurmdParameters=config_overrides): a test cluster runs many short, mostly idle jobs at once, and
# Slurm starts jobs on a ~1 s tick, so a 2-CPU node would cap trivial jobs at ~2.5/s.
CPUS=${GENOBATCH_SLURM_CPUS:-$(($(nproc) > 16 ? $(nproc) : 16))}
GPUS=${GENOBATCH_SLURM_GPUS:-4}
ACCOUNTING=${GENOBATCH_SLURM_ACCOUNTING:-yes}
NODE=localhost
CLUSTER=genobatch
export SLURM_CONF=$DIR/etc/slurm.conf

say() { echo "slurm-cluster: $*" >&2; }
die() { say "$*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "must run as root (slurmd and munged need it)"
    exec sudo -E "$0" "$@"
fi

# The pid in a pid file, if that process is alive.
live_pid() { local pid; pid=$(cat "$1" 2>/dev/null) || return 1; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"; }

# Poll a command until it succeeds or $1 seconds pass (daemons take a moment to listen).
wait_for() {
    local limit=$1; shift
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    if [ "$ACCOUNTING" = yes ]; then
        command -v slurmdbd >/dev/null || missing+=(slurmdbd)
        command -v mariadbd >/dev/null || missing+=(mariadb-server)
    fi
    [ ${#missing[@]} = 0 ] && return 0
    say "installing ${missing[*]}"
    apt-get update -qq
    # policy-rc.d (where present) keeps the packages' own services from starting: this script
    # runs private instances of them instead.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

real_memory_mib() {
    # Leave 1 GiB to the host so the node is never configured with more than it has.
    local mib=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024))
    [ "$mib" -lt 1024 ] && mib=1024
    echo "$mib"
}

# Hard memory limits need task/cgroup on a writable cgroup v1 memory controller (what this
# Debian 12 Slurm 22.05 supports best in containers); without it jobs still run, with Slurm's
# sampling-based kill (JobAcctGatherParams=OverMemoryKill) as the memory limit.
cgroup_v1_usable() {
    [ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/memory ] &&
        grep -q ' /sys/fs/cgroup/memory cgroup ' /proc/mounts
}

write_config() {
    mkdir -p "$DIR"/{etc,state,spool,log,run,dev}
    chmod 755 "$DIR"
    local mem; mem=$(real_memory_mib)
    local task proctrack gather gather_params
    if [ "${GENOBATCH_SLURM_CGROUP:-yes}" = yes ] && cgroup_v1_usable; then
        task=task/cgroup proctrack=proctrack/cgroup gather=jobacct_gather/cgroup gather_params=NoShared
    else
        say "task/cgroup off (GENOBATCH_SLURM_CGROUP=no or no writable cgroup v1 memory controller): memory limits are sampled (OverMemoryKill)"
        task=task/none proctrack=proctrack/linuxproc gather=jobacct_gather/linux gather_params=OverMemoryKill
    fi
    local accounting="AccountingStorageType=accounting_storage/none"
    if [ "$ACCOUNTING" = yes ]; then
        accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# For connections to slurmdbd this names the munge socket (slurm.conf(5), AccountingStoragePass).
AccountingStoragePass=$DIR/munge/munge.socket
AccountingStorageTRES=gres/gpu"
    fi
    local gres_node="" gres_types=""
    if [ "$GPUS" -gt 0 ]; then
        gres_types="GresTypes=gpu"
        gres_node="Gres=gpu:$GPUS"
    fi
    cat >"$DIR/etc/slurm.conf" <<EOF
# Written by scripts/slurm-cluster.sh; rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmctldPort=$PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
SwitchType=switch/none
ProctrackType=$proctrack
TaskPlugin=$task
JobAcctGatherType=$gather
# Sample usage every 2 s so MaxRSS is seen even for short jobs; without cgroups, kill over --mem
# (OverMemoryKill); with them the cgroup is the limit and slurmctld refuses both at once.
JobAcctGatherFrequency=task=2
JobAcctGatherParams=$gather_params
MailProg=/bin/true
$accounting
$gres_types
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default each job would take the whole node's memory and run alone.
DefMemPerCPU=512
# Throughput (SchedMD's high-throughput guide): schedule at every submission and completion,
# no batching delay; keep finished jobs visible to squeue for 5 min (clusters without sacct).
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=1000,bf_interval=5,max_rpc_cnt=150
MinJobAge=300
MaxJobCount=200000
MaxArraySize=100001
# A job that asks for more than the partition/node has is refused by sbatch, not left pending.
EnforcePartLimits=ALL
ReturnToService=2
SlurmdParameters=config_overrides
SlurmdTimeout=300
SlurmctldTimeout=120
InactiveLimit=0
KillWait=30
OverTimeLimit=0
MessageTimeout=10
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=batch Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
    cat >"$DIR/etc/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CgroupAutomount=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=yes
AllowedRAMSpace=100
AllowedSwapSpace=0
ConstrainCores=no
ConstrainDevices=no
EOF
    # Fake GPUs: character devices with NVIDIA's major number; gres gives a job its share and
    # sets CUDA_VISIBLE_DEVICES, which is all genobatch relies on.
    : >"$DIR/etc/gres.conf"
    if [ "$GPUS" -gt 0 ]; then
        local i
        for ((i = 0; i < GPUS; i++)); do
            # Where the container may not mknod, a plain file serves: ConstrainDevices=no never opens it.
            [ -e "$DIR/dev/nvidia$i" ] || mknod "$DIR/dev/nvidia$i" c 195 "$i" 2>/dev/null || : >"$DIR/dev/nvidia$i"
        done
        printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/nvidia[0-%d]\n' \
            "$NODE" "$DIR" $((GPUS - 1)) >"$DIR/etc/gres.conf"
    fi
    if [ "$ACCOUNTING" = yes ]; then
        cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
        chmod 600 "$DIR/etc/slurmdbd.conf"
    fi
}

start_munge() {
    live_pid "$DIR/munge/munged.pid" >/dev/null && return 0
    mkdir -p "$DIR/munge"
    if [ ! -s "$DIR/munge/munge.key" ]; then
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chown -R munge: "$DIR/munge"
    chmod 755 "$DIR/munge"  # munged wants the socket's directory searchable by all
    chmod 400 "$DIR/munge/munge.key"
    runuser -u munge -- munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" --num-threads=4
    wait_for 10 test -S "$DIR/munge/munge.socket" || die "munged did not start: $DIR/munge/munged.log"
}

mysql_cli() { mariadb --socket="$DIR/mysql/mysqld.sock" -uroot "$@"; }

start_database() {
    [ "$ACCOUNTING" = yes ] || return 0
    if ! live_pid "$DIR/run/mariadb.pid" >/dev/null; then
        if [ ! -d "$DIR/mysql/mysql" ]; then
            mkdir -p "$DIR/mysql"
            mariadb-install-db --user=root --datadir="$DIR/mysql" --skip-test-db \
                --auth-root-authentication-method=socket >"$DIR/log/mariadb-install.log" 2>&1 ||
                die "mariadb-install-db failed: $DIR/log/mariadb-install.log"
        fi
        # A private, disposable accounting database: durability traded for speed.
        setsid mariadbd --no-defaults --user=root --datadir="$DIR/mysql" \
            --socket="$DIR/mysql/mysqld.sock" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
            --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
            --skip-name-resolve --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=128M \
            </dev/null >/dev/null 2>&1 &
        wait_for 60 mysql_cli -e 'SELECT 1' || die "MariaDB did not start: $DIR/log/mariadb.log"
    fi
    mysql_cli -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
    [ "$ACCOUNTING" = yes ] || return 0
    if ! live_pid "$DIR/run/slurmdbd.pid" >/dev/null; then
        slurmdbd
    fi
    # slurmdbd creates its tables on first start; sacctmgr answers once it listens.
    wait_for 60 sacctmgr -n list cluster || die "slurmdbd did not start: $DIR/log/slurmdbd.log"
    if [ -z "$(sacctmgr -n -P list cluster format=cluster "where" name=$CLUSTER)" ]; then
        sacctmgr -i add cluster $CLUSTER >/dev/null
    fi
}

node_ready() { sinfo -h -n $NODE -o %T | grep -Eq '^(idle|mixed|allocated|completing)'; }

start() {
    local started=$SECONDS
    if status >/dev/null 2>&1; then
        say "already running"
        echo "export SLURM_CONF=$SLURM_CONF"
        return 0
    fi
    install_packages
    write_config
    start_munge
    start_database
    start_slurmdbd
    live_pid "$DIR/run/slurmctld.pid" >/dev/null || slurmctld
    wait_for 30 scontrol ping || die "slurmctld did not start: $DIR/log/slurmctld.log"
    live_pid "$DIR/run/slurmd.pid" >/dev/null || slurmd -N $NODE
    wait_for 30 node_ready || die "node not ready: $(sinfo -h -N -o '%N %T %E' 2>&1); $DIR/log/slurmd.log"
    say "up in $((SECONDS - started)) s"
    echo "export SLURM_CONF=$SLURM_CONF"
}

# Wait up to $2 seconds for the process in pid file $1 to end, then SIGKILL it.
end_pid() {
    local pid; pid=$(live_pid "$1") || return 0
    wait_for "$2" bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    wait_for 5 bash -c "! kill -0 $pid" || true
}

stop() {
    if live_pid "$DIR/run/slurmctld.pid" >/dev/null; then
        scontrol shutdown >/dev/null 2>&1 || kill "$(live_pid "$DIR/run/slurmctld.pid")" 2>/dev/null || true
    fi
    local pid
    if pid=$(live_pid "$DIR/run/slurmd.pid"); then kill "$pid"; fi
    end_pid "$DIR/run/slurmctld.pid" 30
    end_pid "$DIR/run/slurmd.pid" 30
    if pid=$(live_pid "$DIR/run/slurmdbd.pid"); then kill "$pid"; fi
    end_pid "$DIR/run/slurmdbd.pid" 30
    if pid=$(live_pid "$DIR/run/mariadb.pid"); then kill "$pid"; fi
    end_pid "$DIR/run/mariadb.pid" 60
    if pid=$(live_pid "$DIR/munge/munged.pid"); then kill "$pid"; fi
    end_pid "$DIR/munge/munged.pid" 10
    say "stopped"
}

# Job steps (slurmstepd and the job's processes) outlive slurmd, as on a real cluster, and are
# adopted again by the next start. purge ends them: they are the processes of this cluster's
# job cgroups (proctrack/cgroup) or children of its slurmstepd processes.
purge() {
    stop
    local pid
    for pid in $(cat /sys/fs/cgroup/freezer/slurm/uid_*/job_*/step_*/cgroup.procs 2>/dev/null); do
        kill -9 "$pid" 2>/dev/null || true
    done
    for pid in $(pgrep -x slurmstepd 2>/dev/null); do
        if tr '\0' ' ' <"/proc/$pid/environ" 2>/dev/null | grep -q "SLURM_CONF=$SLURM_CONF"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$DIR"
    say "purged $DIR"
}

status() {
    local ok=0 name file
    for name in munged mariadb slurmdbd slurmctld slurmd; do
        case $name in
            munged) file=$DIR/munge/munged.pid ;;
            *) file=$DIR/run/$name.pid ;;
        esac
        if [ "$ACCOUNTING" != yes ] && { [ $name = mariadb ] || [ $name = slurmdbd ]; }; then continue; fi
        if pid=$(live_pid "$file"); then echo "$name: running (pid $pid)"; else echo "$name: stopped"; ok=1; fi
    done
    if [ $ok = 0 ] && node_ready; then
        echo "node $NODE: $(sinfo -h -n $NODE -o %T)"
        echo "export SLURM_CONF=$SLURM_CONF"
        return 0
    fi
    return 1
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    purge) purge ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) die "usage: $0 start|stop|status|env|purge" ;;
esac
