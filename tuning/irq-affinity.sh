#!/usr/bin/env bash
# Pins every IRQ of a network interface to the housekeeping CPUs and spreads receive packet
# steering (RPS) and transmit steering (XPS) the same way, so NIC work stays off the CPUs
# shards are pinned to.
#
#   tuning/irq-affinity.sh IFACE HOUSEKEEPING_CPULIST      e.g.  eth0 0-1
#
# Run as root after boot (irqbalance stopped: systemctl disable --now irqbalance).
# Undo: reboot, or write the old masks back from /proc/irq/*/smp_affinity_list.
set -euo pipefail
iface=${1:?interface}
cpus=${2:?cpu list, e.g. 0-1}
[[ -d /sys/class/net/$iface ]] || { echo "no interface $iface" >&2; exit 2; }

# A CPU list as a hex mask for the rps_cpus / xps_cpus files.
mask() {
  python3 - "$1" <<'PY'
import sys
m = 0
for part in sys.argv[1].split(','):
    a, _, b = part.partition('-')
    for c in range(int(a), int(b or a) + 1):
        m |= 1 << c
print(format(m, 'x'))
PY
}
hex=$(mask "$cpus")

# IRQs whose name mentions the interface (the per-queue vectors of most drivers).
n=0
while read -r irq _; do
  irq=${irq%:}
  echo "$cpus" >"/proc/irq/$irq/smp_affinity_list" && n=$((n + 1))
done < <(grep -E "\b$iface(-|\b)" /proc/interrupts || true)
echo "pinned $n IRQs of $iface to CPUs $cpus"

for q in /sys/class/net/"$iface"/queues/rx-*; do
  echo "$hex" >"$q/rps_cpus"
  echo 4096 >"$q/rps_flow_cnt"
done
for q in /sys/class/net/"$iface"/queues/tx-*; do
  [[ -w $q/xps_cpus ]] && echo "$hex" >"$q/xps_cpus"
done
echo 32768 >/proc/sys/net/core/rps_sock_flow_entries
echo "RPS/XPS of $iface on CPUs $cpus (mask $hex)"
