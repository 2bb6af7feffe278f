#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for the array-job tests and for trying docs/sweeps.md:
# munged + slurmctld + slurmd started directly (no systemd), every file of theirs under one folder.
#
#   bash scripts/slurm-local.sh install   # apt-get install slurm-wlm munge (root + apt-get), if missing
#   bash scripts/slurm-local.sh start     # start the cluster unless it already answers; prints `export SLURM_CONF=...`
#   bash scripts/slurm-local.sh stop      # cancel its jobs, stop the three daemons, wait until they are gone
#   bash scripts/slurm-local.sh status    # exit 0 only if the controller answers and the node is usable
#   bash scripts/slurm-local.sh env       # print `export SLURM_CONF=...` (source it to use sbatch/squeue/sacct)
#
# The cluster: one node (this host, 127.0.0.1) with 2 CPUs, one partition "debug", select/cons_tres with
# CR_CPU so that two 1-CPU array tasks run side by side, SlurmUser=root, job completion records in a text
# file (`sacct -c` reads them: no slurmdbd/MariaDB needed). The munge key is generated into the folder.
#
# Environment:
#   ATFLOW_SLURM_DIR    the folder (default ${TMPDIR:-/tmp}/atflow-slurm): conf, munge key+socket, pids, logs, state
#   ATFLOW_SLURM_PORT   slurmctld's port (default 16817; slurmd gets +1), away from a real cluster's 6817/6818
#   ATFLOW_SLURM_CPUS   CPUs of the node (default 2)
set -euo pipefail

DIR="${ATFLOW_SLURM_DIR:-${TMPDIR:-/tmp}/atflow-slurm}"
PORT="${ATFLOW_SLURM_PORT:-16817}"
CPUS="${ATFLOW_SLURM_CPUS:-2}"
CONF="$DIR/slurm.conf"
SOCKET="$DIR/munge/munge.socket"
NODE="$(hostname -s)"
export SLURM_CONF="$CONF"

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "slurm-local: $*" >&2; exit 1; }

have_binaries() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; }

install_packages() {
  have_binaries && return 0
  command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and apt-get is not available here"
  [ "$(id -u)" = 0 ] || die "slurm-wlm and munge are not installed; installing them needs root: sudo apt-get install slurm-wlm munge"
  export DEBIAN_FRONTEND=noninteractive
  # The update is needed once on a fresh machine (empty package lists); later installs reuse the lists.
  if ! apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
  fi
  have_binaries || die "apt-get installed slurm-wlm and munge, but slurmctld/slurmd/munged/sbatch are still missing"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The node is usable when slurmctld answers and slurmd has registered it (idle, mixed or allocated).
is_up() {
  [ -f "$CONF" ] && pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid" && pid_alive "$DIR/run/munged.pid" || return 1
  local state
  state="$(sinfo -h -n "$NODE" -o %t 2>/dev/null)" || return 1
  case "$state" in idle*|mix*|alloc*|comp*) return 0 ;; *) return 1 ;; esac
}

write_conf() {
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a single-node cluster on localhost.
ClusterName=atflow
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state/ctld
SlurmdSpoolDir=$DIR/state/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups: a CI container rarely lets us write them. Processes are tracked by their parent chain.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Start the next pending array task as soon as one ends instead of at the next periodic pass.
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
ReturnToService=2
KillWait=5
MinJobAge=600
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

stop_pid() {
  local file="$1" pid i
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  if pid_alive "$DIR/run/slurmctld.pid"; then
    # Jobs' processes are children of slurmstepd, not of the daemons: cancel them so nothing outlives stop.
    scancel --full --partition=debug >/dev/null 2>&1 || true
    local i
    for i in $(seq 100); do [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  stop_pid "$DIR/run/slurmd.pid"
  stop_pid "$DIR/run/slurmctld.pid"
  stop_pid "$DIR/run/munged.pid"
}

start() {
  have_binaries || die "slurm-wlm and munge are not installed (bash scripts/slurm-local.sh install)"
  if is_up; then echo "export SLURM_CONF=$CONF"; return 0; fi
  stop # leftovers of a half-started or crashed cluster
  rm -rf "$DIR/state" "$DIR/log" "$DIR/munge"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/state/ctld" "$DIR/state/slurmd" "$DIR/munge"
  chmod 700 "$DIR/munge"
  # munged refuses a key readable by others; 1 KiB from the kernel's CSPRNG, as mungekey does.
  head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
  chmod 400 "$DIR/munge/munge.key"
  write_conf
  munged --force --socket="$SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/run/munged.pid" \
    --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged did not start: $(tail -n 5 "$DIR/log/munged.log" 2>/dev/null)"
  slurmctld -f "$CONF" -i || die "slurmctld did not start: $(tail -n 5 "$DIR/log/slurmctld.log" 2>/dev/null)"
  slurmd -f "$CONF" -N "$NODE" || die "slurmd did not start: $(tail -n 5 "$DIR/log/slurmd.log" 2>/dev/null)"
  local i
  for i in $(seq 150); do
    if is_up; then echo "export SLURM_CONF=$CONF"; return 0; fi
    sleep 0.2
  done
  echo "--- slurmctld.log" >&2; tail -n 20 "$DIR/log/slurmctld.log" >&2 || true
  echo "--- slurmd.log" >&2; tail -n 20 "$DIR/log/slurmd.log" >&2 || true
  stop
  die "the cluster did not come up within 30 s (logs in $DIR/log)"
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  status) is_up ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
