"""Fails when a resolved dependency declares a rust-version newer than this crate's.

The machine has one toolchain and cannot fetch another, so the MSRV is checked two ways: clippy's
`incompatible_msrv` lint (on by default, reads `rust-version`) catches std APIs in our own code that
are newer than the MSRV, and this script catches dependencies that require a newer compiler.
"""
import json
import subprocess
import sys


def version(v):
    return tuple(int(p) for p in (v.split(".") + ["0", "0"])[:3])


meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--all-features"]))
# Every workspace member (the SDK and iot-sdk-sim): the lowest rust-version among them counts.
members = [p for p in meta["packages"] if p["id"] in meta["workspace_members"]]
ours = min(members, key=lambda p: version(p["rust_version"] or "0"))
msrv = version(ours["rust_version"])
used = {n["id"] for n in meta["resolve"]["nodes"]}
bad = [
    f'{p["name"]} {p["version"]} needs rust {p["rust_version"]}'
    for p in meta["packages"]
    if p["id"] in used and p.get("rust_version") and version(p["rust_version"]) > msrv
]
if bad:
    print(f"dependencies newer than rust-version {ours['rust_version']}:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"{len(used)} packages, none needs more than rust {ours['rust_version']}")
