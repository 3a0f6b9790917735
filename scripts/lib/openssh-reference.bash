# Shared by the benchmarks: the reference OpenSSH server (sshd with internal-sftp, root with a
# throw-away key) and the OpenSSH sftp client that drives both it and the gateway.
# Sourced, not run. Needs root; installs openssh-server if it is missing.

# A transfer that fails inside $(...) stops the benchmark instead of being timed as a fast one.
shopt -s inherit_errexit

ensure_openssh() {
  if [[ ! -x /usr/sbin/sshd ]]; then
    echo "[bench] installing openssh-server for the reference sshd" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >&2
  fi
  command -v sftp >/dev/null || scripts/install-test-tools
}

# start_reference_sshd WORK PORT AUTHORIZED_KEY_FILE: starts sshd in the background; its pid is
# left in $reference_sshd_pid.
start_reference_sshd() {
  local work=$1 port=$2 key=$3
  mkdir -p /run/sshd "$work/sshd"
  ssh-keygen -q -t ed25519 -N '' -f "$work/sshd/host_key"
  cp "$key" "$work/sshd/authorized_keys"
  cat >"$work/sshd/config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $work/sshd/host_key
PidFile $work/sshd/sshd.pid
AuthorizedKeysFile $work/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
CONF
  /usr/sbin/sshd -D -e -f "$work/sshd/config" 2>"$work/sshd/log" &
  reference_sshd_pid=$!
}

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT (10 s at most by default).
wait_port() {
  for _ in $(seq 1 $((${2:-10} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "[bench] nothing listens on port $1" >&2
  return 1
}

# sftp_batch KEY CIPHER PORT USER BATCH_FILE: one session running the batch; fails on the
# first command that fails.
sftp_batch() {
  sftp -q -b "$5" -c "$2" -i "$1" -P "$3" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o IdentitiesOnly=yes "$4@127.0.0.1" >/dev/null
}

# seconds COMMAND...: runs the command and prints how long it took.
seconds() {
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { print e - s }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
