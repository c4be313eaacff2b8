#!/usr/bin/env bash
# A real single-node SLURM cluster on 127.0.0.1 with one fake GPU, for the tests.
#
#   sudo bash .ci/slurm-cluster.sh start    install Debian's packages if missing, write
#                                           the configuration, start munged, slurmctld, slurmd
#   sudo bash .ci/slurm-cluster.sh stop     cancel every job, stop the daemons by PID,
#                                           remove the configuration this script wrote
#   bash .ci/slurm-cluster.sh status        exit 0 if the node answers and is usable
#
# Facts behind the settings: ../shared/docs/slurm-notes.md. The configuration must live
# at /etc/slurm/slurm.conf (jobs clear SLURM_* before their inner srun, so SLURM_CONF
# cannot point elsewhere); this script refuses to overwrite one it did not write.
# There is no accounting database: run Snakemake with `--slurm-status-command squeue`.
# MinJobAge=3600 keeps finished jobs visible to squeue and `scontrol show job` (which
# the tests read: state, comment = rule, allocated GPUs) for an hour.
set -euo pipefail

STATE=${RANK_DISTILLM_SLURM_STATE:-/var/tmp/rank-distillm-slurm}
if [[ $STATE != /?*/?* ]]; then # it is deleted on start: never / or /var
    echo "slurm-cluster: RANK_DISTILLM_SLURM_STATE must be at least two levels deep: '$STATE'" >&2
    exit 1
fi
CONF_DIR=/etc/slurm
MARK="# Written by rank-distillm .ci/slurm-cluster.sh; removed by its 'stop'."
PACKAGES=(munge slurmctld slurmd slurm-client)
PARTITION=debug

log() { echo "slurm-cluster: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local deadline=$((SECONDS + $1)) what=$2
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$what did not happen within the time allowed"
        sleep 0.25
    done
}

ours() { [[ ! -e $1 ]] || head -n1 "$1" | grep -qxF "$MARK"; }

install_packages() {
    local missing=0
    for binary in munged slurmctld slurmd sinfo squeue sbatch scontrol; do
        command -v "$binary" >/dev/null || missing=1
    done
    ((missing)) || return 0
    log "installing ${PACKAGES[*]} (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1; then
        apt-get update -q >>"$STATE/apt.log" 2>&1 || die "apt-get update failed; see $STATE/apt.log"
        apt-get install -y -q "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1 ||
            die "apt-get install ${PACKAGES[*]} failed; see $STATE/apt.log"
    fi
}

munge_works() { munge -n | unmunge; }

start_munge() {
    if munge_works >/dev/null 2>&1; then
        log "munged is already running; using it (it is not ours to stop)"
        return 0
    fi
    [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- munged
    wait_for 10 "munged answering" munge_works
    cp /run/munge/munged.pid "$STATE/munged.pid" # marks it as ours for 'stop'
}

write_config() {
    local node cpu_line memory
    node=$(hostname -s)
    # `slurmd -C` describes this machine: NodeName=... CPUs=... RealMemory=...
    cpu_line=$(slurmd -C | head -n1)
    memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$cpu_line")
    cpu_line=$(sed "s/RealMemory=[0-9]*/RealMemory=$((memory * 9 / 10))/" <<<"$cpu_line")

    # The fake GPU must be a character device; this one is an alias of /dev/null.
    [[ -c $STATE/gpu0 ]] || mknod "$STATE/gpu0" c 1 3

    mkdir -p "$CONF_DIR"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=rank-distillm-test
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
KillWait=10
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
$cpu_line NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$CONF_DIR/gres.conf" <<EOF
$MARK
AutoDetect=off
Name=gpu File=$STATE/gpu0
EOF
}

node_ready() {
    local state
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1)
    [[ $state == idle || $state == mixed || $state == allocated ]]
}

start_failed() {
    for daemon_log in "$STATE"/*.log; do
        [[ -s $daemon_log ]] && log "last lines of $daemon_log:" && tail -n 5 "$daemon_log" >&2
    done
    log "start failed; stopping what it started"
    cmd_stop
}

cmd_start() {
    [[ $EUID -eq 0 ]] || die "start needs root (it installs packages and starts daemons)"
    if alive "$STATE/slurmctld.pid" || alive "$STATE/slurmd.pid"; then
        die "already running (PID files in $STATE); run 'stop' first"
    fi
    for file in slurm.conf gres.conf; do
        ours "$CONF_DIR/$file" ||
            die "$CONF_DIR/$file exists and was not written by this script; not overwriting a real cluster's configuration"
    done
    rm -rf "$STATE"
    mkdir -p "$STATE/slurmctld" "$STATE/slurmd"
    trap 'if (($? != 0)); then start_failed; fi' EXIT
    install_packages
    start_munge
    write_config
    slurmctld -c # -c: no state from an earlier run
    wait_for 20 "slurmctld answering" scontrol ping
    slurmd -N "$(hostname -s)"
    if ! (wait_for 30 "node idle" node_ready) 2>/dev/null; then
        scontrol update NodeName="$(hostname -s)" State=RESUME || true
        wait_for 15 "node idle" node_ready
    fi
    trap - EXIT
    log "up: $(sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G partition=%P')"
}

kill_pidfile() { # kill_pidfile FILE NAME
    local pid
    [[ -s $1 ]] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for ((i = 0; i < 60; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$2 (PID $pid) ignored SIGTERM for 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $2 (PID $pid)"
    fi
    rm -f "$1"
}

no_jobs() { [[ -z $(squeue -h -o %i 2>/dev/null) ]]; }

cmd_stop() {
    [[ $EUID -eq 0 ]] || die "stop needs root"
    if alive "$STATE/slurmctld.pid"; then
        local jobs
        jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
        if [[ -n $jobs ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs || true
            (wait_for 30 "all jobs ended" no_jobs) || log "jobs still listed: $(squeue -h -o '%i %T' | tr '\n' ' ')"
        fi
    fi
    kill_pidfile "$STATE/slurmd.pid" slurmd
    kill_pidfile "$STATE/slurmctld.pid" slurmctld
    kill_pidfile "$STATE/munged.pid" munged
    for file in slurm.conf gres.conf; do
        if [[ -e $CONF_DIR/$file ]] && ours "$CONF_DIR/$file"; then rm -f "$CONF_DIR/$file"; fi
    done
    log "down (logs kept in $STATE)"
}

cmd_status() {
    node_ready || die "no usable SLURM node (start it with: sudo bash .ci/slurm-cluster.sh start)"
    sinfo -h -N -o '%N %T cpus=%c mem=%m gres=%G partition=%P'
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) die "usage: $0 start|stop|status" ;;
esac
