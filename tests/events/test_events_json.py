#!/usr/bin/env python3
"""Every event's JSON line parses (strict JSON, UTF-8) and says what the
manifest says: the provider's name and GUID (as Microsoft's registered
manifest gives them, in the seed the project derives from: literals here,
not the code's constants), each event's channel and fields (read from the
manifest TSV here, not from the generated table), and string fields with
hostile bytes decoded as Python's decode("utf-8", "replace") does.
usage: test_events_json.py PRINT_EVENTS EVENTS.tsv"""
import json
import subprocess
import sys

PROVIDER = "Microsoft-Windows-Kernel-LiveDump"
GUID = "bef2aa8e-81cd-11e2-a7bb-5eac6188709b"
# not UTF-8 (0xff, a cut sequence, a surrogate, an overlong) and controls
HOSTILE = b"cb\xff\xe2\x82-\xed\xa0\x80-\xc0\xaf-\x01\x1b[0m\x7f\xc2\x85-\xc3\xa9\"\\\n"

prog, tsv = sys.argv[1], sys.argv[2]
manifest = {}
with open(tsv, encoding="utf-8") as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        line = line.rstrip("\n")
        if not line:
            continue
        row = dict(zip(header, line.split("\t")))
        fields = [tuple(x.split(":")) for x in row["fields"].split(",")] if row["fields"] else []
        manifest[int(row["id"])] = (row["channel"], fields)

out = subprocess.run([prog, HOSTILE], capture_output=True, check=True).stdout
lines = out.split(b"\n")
assert lines[-1] == b"", "output does not end with a newline"
failures = 0
seen = set()
want_text = HOSTILE.decode("utf-8", "replace")
for raw in lines[:-1]:
    try:
        ev = json.loads(raw)  # bytes: must be valid UTF-8; no raw control characters
        i = ev["id"]
        seen.add(i)
        channel, fields = manifest[i]
        assert ev["provider_name"] == PROVIDER, ev["provider_name"]
        assert ev["provider_guid"] == GUID, ev["provider_guid"]
        assert ev["channel"] == channel, (ev["channel"], channel)
        assert ev["log_name"] == f"{PROVIDER}/{channel}", ev["log_name"]
        assert ev["level"] in ("Error", "Warning", "Information"), ev["level"]
        # not known from the manifest: left out rather than made up
        for unknown in ("task", "opcode", "keywords", "version"):
            assert unknown not in ev, unknown
        assert list(ev["fields"]) == [name for name, _ in fields], (list(ev["fields"]), fields)
        for name, ftype in fields:
            v = ev["fields"][name]
            if ftype in ("AnsiString", "UnicodeString"):
                assert v == want_text, (name, v)
            elif ftype == "Pointer":
                assert v == "0x%016X" % 4242, (name, v)
            elif ftype == "Boolean":
                assert v is True, (name, v)
            elif name == "NTStatus":
                assert v == "0x%08X" % 4242, (name, v)
            else:
                assert v == 4242, (name, v)
    except (AssertionError, KeyError, ValueError) as err:
        print(f"FAIL: {raw[:200]!r}: {err!r}")
        failures += 1
if seen != set(manifest):
    print(f"FAIL: events in the manifest but not printed: {sorted(set(manifest) - seen)}, "
          f"printed but not in the manifest: {sorted(seen - set(manifest))}")
    failures += 1
print(f"events-json: {len(lines) - 1} events, {failures} failures")
sys.exit(1 if failures else 0)
