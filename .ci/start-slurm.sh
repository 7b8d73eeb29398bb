#!/usr/bin/env bash
# Start a single-node SLURM cluster (munge + slurmctld + slurmd) on this machine, for the tests of
# `medvlp-bench sweep --executor slurm`. Idempotent: a cluster that is already up is left alone.
# Needs root and Debian's packages (slurm-wlm, munge; SLURM 22.05 on Debian 12). Exits non-zero with the reason
# when the node does not become idle. Environment: SLURM_START_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

timeout_s="${SLURM_START_TIMEOUT:-60}"
conf=/etc/slurm/slurm.conf
log_dir=/var/log/slurm

die() { echo "start-slurm: $*" >&2; exit 1; }

node_state() { sinfo --noheader --nodes=localhost --format=%T 2>/dev/null | head -n 1 | tr -d '*~#!%$@^-'; }

if command -v sinfo >/dev/null && [ "$(node_state)" = "idle" -o "$(node_state)" = "mixed" -o "$(node_state)" = "allocated" ]; then
    echo "start-slurm: cluster already up (node localhost $(node_state))"
    exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (installs packages and starts daemons); current user $(id -un)"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "start-slurm: installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# munge: its folders must belong to the munge user, and it must run before slurmctld and slurmd.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
[ -s /etc/munge/munge.key ] || { command -v mungekey >/dev/null && mungekey --create --force >/dev/null 2>&1; } \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -u munge -x munged >/dev/null; then
    su -s /bin/sh munge -c /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
fi
munge -n | unmunge >/dev/null 2>&1 || die "munge does not work: 'munge -n | unmunge' failed (see /var/log/munge/munged.log)"

cpus=$(nproc)
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p /etc/slurm "$log_dir" /var/spool/slurmctld /var/spool/slurmd
cat > "$conf" <<CONF
# written by .ci/start-slurm.sh: a single-node cluster for tests
ClusterName=medvlp-ci
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
NodeName=localhost CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -x slurmctld >/dev/null || slurmctld || die "slurmctld did not start (see $log_dir/slurmctld.log)"
# a slurmd started before munge stays in state "unk": restart it if it is not responding
if [ -s /run/slurmd.pid ] && kill -0 "$(cat /run/slurmd.pid)" 2>/dev/null && [ "$(node_state)" != "idle" ]; then
    kill "$(cat /run/slurmd.pid)"; sleep 1
fi
pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start (see $log_dir/slurmd.log)"

for _ in $(seq "$timeout_s"); do
    state=$(node_state)
    case "$state" in
        idle|mixed|allocated) echo "start-slurm: node localhost is $state ($cpus CPUs, ${memory_mb} MB)"; exit 0 ;;
        down|drained|drain|fail) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
die "node localhost is '${state:-unreachable}' after ${timeout_s} s; last lines of $log_dir/slurmctld.log and slurmd.log:
$(tail -n 5 $log_dir/slurmctld.log 2>/dev/null; tail -n 5 $log_dir/slurmd.log 2>/dev/null)"
