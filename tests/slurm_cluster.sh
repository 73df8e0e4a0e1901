#!/usr/bin/env bash
# A throw-away one-node SLURM cluster on this host, for tests/test_slurm.py and
# for trying profiles/slurm/ by hand. Everything it writes (slurm.conf, munge
# key and socket, state, spool, pid and log files) lives under DIR.
#
#   tests/slurm_cluster.sh up DIR     # prints `export SLURM_CONF=DIR/slurm.conf`
#   tests/slurm_cluster.sh down DIR   # cancels DIR's jobs, stops DIR's daemons
#
# Needs the Debian packages slurmd slurmctld slurm-client munge. `up` exits
# 2 when they are missing, 1 when the cluster does not come up (see DIR/*.log).
# `down` touches only the job ids this cluster reports and the PIDs that `up`
# recorded in DIR/pids (never a process by name).
set -uo pipefail

cmd="${1:-}"
dir="${2:-}"
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 up|down DIR" >&2
    exit 64
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
export SLURM_CONF="$dir/slurm.conf"

find_bin() {  # slurmctld/slurmd/munged live in /usr/sbin, not always on PATH
    command -v "$1" 2>/dev/null || { [[ -x "/usr/sbin/$1" ]] && echo "/usr/sbin/$1"; }
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

down() {
    if [[ -f "$SLURM_CONF" ]] && command -v squeue >/dev/null; then
        # every job of this private cluster was submitted by the test
        ids=$(timeout 10 squeue --noheader --format=%i 2>/dev/null || true)
        if [[ -n "$ids" ]]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $ids 2>/dev/null || true
        fi
    fi
    if [[ -f "$dir/pids" ]]; then
        # last started first: slurmd, slurmctld, munged
        tac "$dir/pids" | while read -r name pid; do
            if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
                echo "stopped $name ($pid)"
            fi
        done
        rm -f "$dir/pids"
    fi
}

up() {
    local slurmctld slurmd munged
    slurmctld=$(find_bin slurmctld); slurmd=$(find_bin slurmd); munged=$(find_bin munged)
    for tool in "$slurmctld" "$slurmd" "$munged" "$(command -v sbatch)" "$(command -v sinfo)"; do
        if [[ -z "$tool" ]]; then
            echo "SLURM/munge not installed (need slurmd slurmctld slurm-client munge)" >&2
            exit 2
        fi
    done

    local host user cpus mem ctld_port d_port
    host=$(hostname -s)
    user=$(id -un)
    cpus=$(nproc)
    # RealMemory: 80% of the memory available now, in MB
    mem=$(awk '/MemAvailable/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    ctld_port=$(free_port)
    d_port=$(free_port)
    mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
    chmod 711 "$dir/munge"

    # munge: its own key and socket
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    "$munged" -F -f -S "$dir/munge/socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/seed" \
        --log-file="$dir/munged.log" >>"$dir/munged.out" 2>&1 &
    echo "munged $!" >>"$dir/pids"
    for _ in $(seq 50); do [[ -S "$dir/munge/socket" ]] && break; sleep 0.1; done
    if [[ ! -S "$dir/munge/socket" ]]; then
        echo "munged did not start (see $dir/munged.log)" >&2
        exit 1
    fi

    cat >"$SLURM_CONF" <<EOF
# one-node test cluster written by tests/slurm_cluster.sh
ClusterName=sedmaptest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
PlugStackConfig=$dir/plugstack.conf
ReturnToService=2
# squeue keeps finished jobs this long: the executor's status checks use it
MinJobAge=900
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$dir/plugstack.conf"

    # snakemake-executor-plugin-slurm-jobstep (0.6) drops every SLURM_* variable
    # but the job's identity before its nested `srun`, SLURM_CONF included; on
    # a real cluster srun finds /etc/slurm/slurm.conf, here this wrapper (first
    # on PATH, which sbatch --export=ALL passes on) points it at DIR's config.
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nSLURM_CONF=%s\nexport SLURM_CONF\nexec %s "$@"\n' \
        "$SLURM_CONF" "$(command -v srun)" >"$dir/bin/srun"
    chmod +x "$dir/bin/srun"

    "$slurmctld" -D -i -f "$SLURM_CONF" >>"$dir/slurmctld.out" 2>&1 &
    echo "slurmctld $!" >>"$dir/pids"
    "$slurmd" -D -N "$host" -f "$SLURM_CONF" >>"$dir/slurmd.out" 2>&1 &
    echo "slurmd $!" >>"$dir/pids"

    for _ in $(seq 60); do
        state=$(timeout 5 sinfo --noheader --nodes="$host" --format=%T 2>/dev/null || true)
        if [[ "$state" == "idle" ]]; then
            echo "export SLURM_CONF=$SLURM_CONF PATH=$dir/bin:\$PATH"
            return 0
        fi
        sleep 0.5
    done
    echo "node $host not idle after 30 s (state: ${state:-none}); logs:" >&2
    tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/*.out >&2 2>/dev/null
    exit 1
}

case "$cmd" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down DIR" >&2; exit 64 ;;
esac
