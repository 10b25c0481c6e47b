# Sourced by the benchmarks: the two host fixes the peers need on this machine
# (coracle does not), applied idempotently. crun refuses hybrid cgroups until a v1
# hugetlb hierarchy is mounted; podman needs default_ulimits within the hard
# RLIMIT_NOFILE.
if [ -d /sys/fs/cgroup/unified ] && ! grep -q " /sys/fs/cgroup/hugetlb " /proc/self/mountinfo; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi
if ! grep -q '^default_ulimits' /etc/containers/containers.conf 2>/dev/null; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n' \
    >>/etc/containers/containers.conf
fi
