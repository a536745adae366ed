"""Regenerate the committed protobuf stubs; `--check` fails if the committed ones drift."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "protos" / "silobridge" / "v1"


def _generate(out_root: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.glob("*.proto"))
    rel = [str(p.relative_to(ROOT)) for p in protos]
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *rel,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return sorted((out_root / "protos" / "silobridge" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if stubs are stale")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generated = _generate(Path(tmp))
        stale = []
        for path in generated:
            target = PROTO_DIR / path.name
            if args.check:
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    stale.append(path.name)
            else:
                shutil.copyfile(path, target)
        if args.check and stale:
            print(f"stale protobuf stubs: {', '.join(stale)}; run: python scripts/gen_protos.py")
            return 1
    print("protobuf stubs are current" if args.check else f"wrote {len(generated)} stubs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
