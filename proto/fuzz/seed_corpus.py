#!/usr/bin/env python3
"""Seed corpus/decode from the real BGP messages in ../shared/testdata.

Each seed is what the `decode` target reads: one context octet (0x01
four-octet AS, 0x02/0x04 add-path IPv4/IPv6) and then BGP messages. Seeds
are one message each, plus each MRT session as one stream (consecutive
messages of one record subtype), so framing across messages is covered too.
File names are content hashes, so running it twice changes nothing.

    python3 seed_corpus.py [TESTDATA_DIR]   # default: ../../../shared/testdata
"""

import gzip
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../shared/testdata")
OUT = os.path.join(HERE, "corpus", "decode")

BGP4MP, BGP4MP_ET = 16, 17
# MRT BGP4MP subtype -> (four-octet AS, add-path) (RFC 6396, RFC 8050).
SUBTYPES = {1: (0, 0), 6: (0, 0), 4: (1, 0), 7: (1, 0), 8: (0, 1), 10: (0, 1), 9: (1, 1), 11: (1, 1)}


def context(four_octet, add_path):
    return bytes([(0x01 if four_octet else 0) | (0x06 if add_path else 0)])


def mrt_messages(data):
    """(context octet, BGP message) for every BGP4MP message record."""
    while len(data) >= 12:
        _, mrt_type, subtype, length = struct.unpack_from(">IHHI", data)
        body, data = data[12 : 12 + length], data[12 + length :]
        if mrt_type == BGP4MP_ET:
            body = body[4:]
        elif mrt_type != BGP4MP:
            continue
        if subtype not in SUBTYPES:
            continue
        four_octet, add_path = SUBTYPES[subtype]
        body = body[8:] if four_octet else body[4:]
        afi = struct.unpack_from(">H", body, 2)[0]
        body = body[4 + (8 if afi == 1 else 32) :]
        yield context(four_octet, add_path), body


def write(seed, written):
    name = hashlib.sha1(seed).hexdigest()
    if name not in written:
        written.add(name)
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(seed)


def main():
    os.makedirs(OUT, exist_ok=True)
    written = set(os.listdir(OUT))
    before = len(written)

    sources = [os.path.join(TESTDATA, "mrt", n) for n in ("bird_bgp", "bird6_bgp", "openbgpd_bgp", "quagga_bgp")]
    sources.append(os.path.join(TESTDATA, "ris", "updates.20160811.1600.gz"))
    for path in sources:
        raw = open(path, "rb").read()
        if path.endswith(".gz"):
            raw = gzip.decompress(raw)
        stream_ctx, stream = None, b""
        for ctx, message in mrt_messages(raw):
            write(ctx + message, written)
            # Whole sessions as streams (small files only: RIS mixes peers).
            if not path.endswith(".gz"):
                if ctx != stream_ctx and stream:
                    write(stream_ctx + stream, written)
                    stream = b""
                stream_ctx, stream = ctx, stream + message
        if stream:
            write(stream_ctx + stream, written)

    vectors = json.load(open(os.path.join(TESTDATA, "exabgp", "encoding-vectors.json")))
    for v in vectors:
        message = bytes.fromhex(v["hex"])
        add_path = "addpath" in (v.get("file") or "") or "path-information" in (v.get("cmd") or "")
        write(context(True, add_path) + message, written)
        if not add_path:
            write(context(False, False) + message, written)

    print(f"{len(written) - before} new seeds in {OUT} ({len(written)} in all)")


if __name__ == "__main__":
    main()
