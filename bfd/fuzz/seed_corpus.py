#!/usr/bin/env python3
"""Seeds corpus/decode and corpus/session from the captured FRR and BIRD
packets kept in ../tests/vectors.rs (the hex strings of 24 octets)."""
import os
import re

here = os.path.dirname(os.path.abspath(__file__))
source = open(os.path.join(here, "..", "tests", "vectors.rs")).read()
packets = []
for hexstr in re.findall(r'"((?:[0-9a-f]{8} ){5}[0-9a-f]{8})"', source):
    packets.append(bytes.fromhex(hexstr.replace(" ", "")))

for target in ("decode", "session"):
    os.makedirs(os.path.join(here, "corpus", target), exist_ok=True)
for i, packet in enumerate(packets):
    with open(os.path.join(here, "corpus", "decode", f"captured-{i:02}"), "wb") as f:
        f.write(packet)
# session: header (300 ms, 300 ms, seed 3), then every packet in turn with
# a 100 ms step between, as opcode 1 (raw datagram).
script = bytearray([1, 1, 3])
for packet in packets:
    script += bytes([1, len(packet)]) + packet + bytes([2, 0, 100])
with open(os.path.join(here, "corpus", "session", "captured-sequence"), "wb") as f:
    f.write(bytes(script))
print(f"{len(packets)} packets seeded")
