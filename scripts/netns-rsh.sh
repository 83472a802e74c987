#!/bin/sh
# A remote-launch agent for Open MPI (--mca plm_rsh_agent) on the namespace
# test cluster (scripts/cluster.sh): where mpirun would run "ssh HOST CMD",
# this runs CMD in the namespace called HOST. Needs root, like ip netns exec.
# Give mpirun --mca rtc_hwloc_vmhole none too (README: the hosts share a host
# name, and Open MPI's daemons collide on a shared-memory topology file).
#   netns-rsh.sh [SSH OPTIONS] HOST COMMAND...
# Options before HOST (MPICH's launcher passes ssh's -x) are ignored.
while [ "${1#-}" != "$1" ]; do
    shift
done
host=$1
shift
# The hosts share one file system and host name: Open MPI's daemons would race
# for one session directory (/tmp/ompi.<hostname>.<uid>), so each host's
# daemon gets its own base.
OMPI_MCA_orte_tmpdir_base=${TMPDIR:-/tmp}/ompi-netns-$host
mkdir -p "$OMPI_MCA_orte_tmpdir_base"
export OMPI_MCA_orte_tmpdir_base
exec ip netns exec "$host" /bin/sh -c "$*"
