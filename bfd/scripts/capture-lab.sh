#!/bin/bash
# Captures real BFD control packets (RFC 5880/5881) between FRR bfdd and
# BIRD 2 in a pair of network namespaces created here and removed on exit.
# Run as root: bfd/scripts/capture-lab.sh OUT.pcap
# The hex of selected packets is kept in bfd/tests/vectors.rs with provenance.
set -euo pipefail
out=${1:?usage: capture-lab.sh OUT.pcap}
id=bfdcap$$
nf=${id}f; nb=${id}b            # namespaces: FRR side, BIRD side
vf=${id}vf; vb=${id}vb          # veth ends
frr=/etc/frr/$id
work=$(mktemp -d)
pids=()

cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    [ -f "$work/bird.pid" ] && kill "$(cat "$work/bird.pid")" 2>/dev/null
    [ -d "$frr" ] && ip netns exec "$nf" /usr/lib/frr/frrinit.sh stop "$id" >/dev/null 2>&1
    ip netns del "$nf" 2>/dev/null; ip netns del "$nb" 2>/dev/null
    rm -rf "$frr" "$work"
}
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
    local what=$1 secs=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && { echo "timeout: $what" >&2; exit 1; }
        sleep 0.2
    done
}
frr_status() { ip netns exec "$nf" vtysh -N "$id" -c 'show bfd peers json' | grep -q "\"status\":\"$1\""; }

ip netns add "$nf"; ip netns add "$nb"
ip link add "$vf" type veth peer name "$vb"
ip link set "$vf" netns "$nf"; ip link set "$vb" netns "$nb"
ip -n "$nf" addr add 10.203.0.1/30 dev "$vf"
ip -n "$nb" addr add 10.203.0.2/30 dev "$vb"
ip -n "$nf" addr add fd00:203::1/64 dev "$vf" nodad
ip -n "$nb" addr add fd00:203::2/64 dev "$vb" nodad
for n in "$nf" "$nb"; do ip -n "$n" link set lo up; done
ip -n "$nf" link set "$vf" up; ip -n "$nb" link set "$vb" up

ip netns exec "$nf" tcpdump -i "$vf" -U -w "$out" 'udp port 3784' 2>"$work/tcpdump.log" &
pids+=($!)
wait_for "tcpdump listening" 10 grep -q listening "$work/tcpdump.log"

# FRR 8.4 bfdd: one IPv4 and one IPv6 single-hop peer, 300 ms x 3.
mkdir -p "$frr"
sed -e 's/^bfdd=no/bfdd=yes/' /etc/frr/daemons > "$frr/daemons"
cat > "$frr/frr.conf" <<CONF
frr defaults datacenter
hostname $id
bfd
 peer 10.203.0.2 local-address 10.203.0.1 interface $vf
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
 !
 peer fd00:203::2 local-address fd00:203::1 interface $vf
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
 !
!
CONF
touch "$frr/vtysh.conf"
chown -R frr:frr "$frr"
ip netns exec "$nf" /usr/lib/frr/frrinit.sh start "$id" >/dev/null
# FRR alone: Down packets at the slow (1 s) rate, Your Discriminator 0.
wait_for "FRR bfdd answers" 30 frr_status down
sleep 2.5   # let a few slow-rate Down packets go out (capture content, not sync)

# BIRD 2: the same sessions, 200 ms x 3 so FRR must negotiate.
cat > "$work/bird.conf" <<CONF
router id 10.203.0.2;
protocol device {}
protocol bfd {
  interface "$vb" { min rx interval 200 ms; min tx interval 200 ms; idle tx interval 1000 ms; multiplier 3; };
  neighbor 10.203.0.1 dev "$vb" local 10.203.0.2;
  neighbor fd00:203::1 dev "$vb" local fd00:203::2;
}
CONF
ip netns exec "$nb" bird -c "$work/bird.conf" -s "$work/bird.ctl" -P "$work/bird.pid"
wait_for "BFD up" 30 frr_status up
sleep 2     # a few Up packets and FRR's poll sequence to the fast rate

# Change FRR's intervals at runtime: a poll sequence (RFC 5880 §6.8.3).
ip netns exec "$nf" vtysh -N "$id" -c 'configure terminal' -c 'bfd' \
    -c 'peer 10.203.0.2 local-address 10.203.0.1 interface '"$vf" -c 'transmit-interval 500' -c 'receive-interval 500'
sleep 2
# FRR AdminDown (diag 7), then back up.
ip netns exec "$nf" vtysh -N "$id" -c 'configure terminal' -c 'bfd' \
    -c 'peer 10.203.0.2 local-address 10.203.0.1 interface '"$vf" -c 'shutdown'
wait_for "FRR admin down" 10 frr_status shutdown
sleep 1.5
ip netns exec "$nf" vtysh -N "$id" -c 'configure terminal' -c 'bfd' \
    -c 'peer 10.203.0.2 local-address 10.203.0.1 interface '"$vf" -c 'no shutdown'
sleep 4
# BIRD stops: whatever it sends, then FRR's detection timeout (diag 1).
kill "$(cat "$work/bird.pid")"
sleep 3
ip netns exec "$nf" vtysh -N "$id" -c 'show bfd peers' > "${out%.pcap}.frr-peers.txt"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
echo "captured $(tcpdump -r "$out" 2>/dev/null | wc -l) packets into $out"
