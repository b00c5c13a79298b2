#!/usr/bin/env python3
"""Regenerate hubbletui/proto/ from protos/ with grpcio-tools.

    python scripts/generate_protos.py          # rewrite the committed modules
    python scripts/generate_protos.py --check  # exit 1 if the committed modules are stale

protoc names Python imports after the .proto import paths (``from flow import flow_pb2``); the
generated modules live inside the package, so those imports are rewritten to ``hubbletui.proto.*``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "hubbletui" / "proto"
FILES = ("flow/flow.proto", "relay/relay.proto", "observer/observer.proto", "digest/digest.proto")
SERVICE_FILES = ("observer/observer.proto",)
PACKAGES = ("flow", "relay", "observer", "digest")
IMPORT = re.compile(rf"^(from|import) ({'|'.join(PACKAGES)})(\.| )", re.M)


def generate(into: Path) -> dict[str, str]:
    """Run protoc into ``into`` and return {relative path: text} with imports rewritten."""
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    base = ["protoc", f"-I{PROTOS}", f"-I{include}"]
    # gRPC stubs only where a service is declared: the others would be empty modules
    if protoc.main([*base, f"--python_out={into}", f"--pyi_out={into}", *FILES]) != 0 \
            or protoc.main([*base, f"--grpc_python_out={into}", *SERVICE_FILES]) != 0:
        raise SystemExit("protoc failed")
    out = {}
    for path in sorted(into.rglob("*.py*")):
        text = path.read_text()
        text = IMPORT.sub(lambda m: f"{m[1]} hubbletui.proto.{m[2]}{m[3]}", text)
        out[str(path.relative_to(into))] = text
    for pkg in PACKAGES:
        out[f"{pkg}/__init__.py"] = ""
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    stale = [rel for rel, text in fresh.items()
             if not (OUT / rel).exists() or (OUT / rel).read_text() != text]
    extra = sorted(str(p.relative_to(OUT)) for p in OUT.rglob("*_pb2*.py*") if str(p.relative_to(OUT)) not in fresh)
    if opts.check:
        for rel in stale:
            print(f"stale: hubbletui/proto/{rel}", file=sys.stderr)
        for rel in extra:
            print(f"not generated from protos/: hubbletui/proto/{rel}", file=sys.stderr)
        return 1 if stale or extra else 0
    for rel in extra:
        (OUT / rel).unlink()
        print(f"removed hubbletui/proto/{rel}")
    for rel in stale:
        (OUT / rel).parent.mkdir(parents=True, exist_ok=True)
        (OUT / rel).write_text(fresh[rel])
        print(f"wrote hubbletui/proto/{rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
