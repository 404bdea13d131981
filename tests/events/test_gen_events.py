#!/usr/bin/env python3
"""The generator refuses malformed manifests with a message naming the line.
usage: test_gen_events.py GEN_EVENTS.py GOOD.tsv"""
import os
import subprocess
import sys
import tempfile

gen, good = sys.argv[1], sys.argv[2]
header = "id\tchannel\tworkflow\tmessage\tfields\tnotes\n"
cases = {
    "duplicate id": header + "1\tOperational\tw\tA.\t\t\n1\tOperational\tw\tB.\t\t\n",
    "unknown type": header + "1\tOperational\tw\tA {X}.\tX:Float\t\n",
    "placeholder without field": header + "1\tOperational\tw\tA {Missing}.\t\t\n",
    "unknown channel": header + "1\tDebug\tw\tA.\t\t\n",
    "wrong header": "id\tchannel\n1\tOperational\n",
    "short line": header + "1\tOperational\tw\n",
}
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "out.c")
    r = subprocess.run([sys.executable, gen, good, out], capture_output=True, text=True)
    if r.returncode != 0 or "ldi_event_descs" not in open(out).read():
        print("FAIL: the real manifest was refused:", r.stderr)
        failed += 1
    for name, text in cases.items():
        path = os.path.join(tmp, "bad.tsv")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([sys.executable, gen, path, out], capture_output=True, text=True)
        if r.returncode == 0 or "bad.tsv:" not in r.stderr:
            print(f"FAIL: {name}: exit {r.returncode}, stderr {r.stderr!r}")
            failed += 1
        else:
            print(f"ok: {name}: {r.stderr.strip()}")
print(f"generator: {len(cases) + 1 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
