#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for testing profiles/slurm (docs/slurm.md).
#
#   sudo scripts/slurm_cluster.sh start    # install slurm + munge if missing, configure, start
#   scripts/slurm_cluster.sh status        # sinfo / scontrol ping
#   sudo scripts/slurm_cluster.sh stop     # stop the daemons this script started (pid files)
#
# Debian/Ubuntu packages (apt-get), daemons as root, no systemd and no cgroups (runs in a
# container): proctrack/linuxproc, task/none, no accounting (jobs are queried with squeue,
# kept MinJobAge seconds after they end). The node is this machine as `slurmd -C` sees it;
# one partition, $MAESTRO_SLURM_PARTITION (default "debug"). The node also declares
# $MAESTRO_SLURM_GPUS (default 2, 0 for none) stand-in GPUs of type "fake" (GRES backed by
# /dev/null-like character devices, no CUDA): GPU requests (--gpus=fake:2, --cpus-per-gpu)
# are scheduled for real, and the jobs run on the CPU.
# It writes /etc/slurm/slurm.conf and refuses to replace one it did not write.
set -euo pipefail

STATE=${MAESTRO_SLURM_STATE:-/var/lib/maestro-slurm}
PARTITION=${MAESTRO_SLURM_PARTITION:-debug}
GPUS=${MAESTRO_SLURM_GPUS:-2}
CONF=/etc/slurm/slurm.conf
MARK="# written by maestro-bench scripts/slurm_cluster.sh"
NODE=$(hostname -s)

die() { echo "slurm_cluster: $*" >&2; exit 1; }
log() { echo "slurm_cluster: $*" >&2; }

install_packages() {
    local missing=()
    for cmd in munged slurmctld slurmd sbatch; do
        command -v "$cmd" >/dev/null || missing+=("$cmd")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing slurm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    local out=/tmp/slurm_cluster.apt.log
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        munge slurmctld slurmd slurm-client; } >"$out" 2>&1 \
        || { tail -n 20 "$out" >&2; die "apt-get install of slurm/munge failed (log: $out)"; }
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; not touching a real cluster"
    fi
    local node_line
    node_line=$(slurmd -C | head -1) || die "slurmd -C failed"
    # slurmd -C names the node after the host; we run slurmd with -N "$NODE" to match.
    node_line=$(echo "$node_line" | sed "s/^NodeName=[^ ]*/NodeName=$NODE/")
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
    local gres="" devices=(/dev/null /dev/zero /dev/full /dev/urandom) i
    [ "$GPUS" -le ${#devices[@]} ] || die "at most ${#devices[@]} stand-in GPUs"
    if [ "$GPUS" -gt 0 ]; then
        gres="Gres=gpu:fake:$GPUS"
        for ((i = 0; i < GPUS; i++)); do
            echo "NodeName=$NODE Name=gpu Type=fake File=${devices[$i]}"
        done >/etc/slurm/gres.conf
    else
        : >/etc/slurm/gres.conf
    fi
    cat >"$CONF" <<EOF
$MARK
ClusterName=maestro
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
GresTypes=gpu
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=86400
ReturnToService=2
KillWait=5
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
$node_line NodeAddr=127.0.0.1 State=UNKNOWN $gres
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
    [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key \
        || die "cannot create /etc/munge/munge.key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge "$STATE/munge"
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge \
        "$STATE/munge" 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    # our own pid file: `stop` ends only the munged this script started
    runuser -u munge -- munged --pid-file="$STATE/munge/munged.pid" 2>/dev/null \
        || munged --force --pid-file="$STATE/munge/munged.pid" \
        || die "munged did not start"
    for _ in $(seq 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    die "munge does not answer (see /var/log/munge/munged.log)"
}

wait_idle() {
    local state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
        case "$state" in
            idle | mixed | allocated) return 0 ;;
            down* | drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 2>/dev/null || true
    die "node $NODE not idle after 60 s (state: ${state:-no answer}); logs in $STATE"
}

start() {
    [ "$(id -u)" -eq 0 ] || die "start needs root (daemons run as root)"
    install_packages
    if scontrol ping 2>/dev/null | grep -q UP && pid_alive "$STATE/slurmd.pid"; then
        log "already running"
        wait_idle
        return 0
    fi
    write_conf
    start_munge
    pid_alive "$STATE/slurmctld.pid" || slurmctld -i || die "slurmctld did not start"
    pid_alive "$STATE/slurmd.pid" || slurmd -N "$NODE" || die "slurmd did not start"
    wait_idle
    log "up: node $NODE, partition $PARTITION ($(sinfo -h -o '%c CPUs, %m MB' | head -1))"
}

stop() {
    local f pid
    for f in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munge/munged.pid"; do
        pid_alive "$f" || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && die "$(basename "$f" .pid) (pid $pid) did not stop"
        log "stopped $(basename "$f" .pid)"
    done
}

status() {
    scontrol ping && sinfo
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
