"""Generate the Python code of protos/ into shared/gen/, or check that it is up to date.

python tools/protos.py          # regenerate shared/gen/
python tools/protos.py --check  # exit 1 when regenerating would change anything
python tools/protos.py --deps build/proto-deps  # copy google/type protos for buf
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "shared" / "gen"
GOOGLE_DEPS = ["google/type/money.proto", "google/type/date.proto"]


def googleapis_root() -> Path:
    import google.type.money_pb2 as m

    return Path(m.__file__).resolve().parent.parent.parent


def generate(out: Path) -> None:
    import grpc_tools

    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{googleapis_root()}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    subprocess.run(cmd, check=True, cwd=PROTOS)
    for d in [p for p in out.rglob("*") if p.is_dir()] + [out]:
        init = d / "__init__.py"
        if d != out and not init.exists():
            init.write_text("")


def tree(path: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(path)): p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--deps")
    args = ap.parse_args()
    if args.deps:
        dst = Path(args.deps)
        for rel in GOOGLE_DEPS:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(googleapis_root() / rel, dst / rel)
        return 0
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            new, old = tree(Path(tmp)), tree(GEN)
            changed = sorted(
                set(new) ^ set(old)
                | {k for k in set(new) & set(old) if not filecmp.cmp(new[k], old[k], shallow=False)}
            )
            if changed:
                print("shared/gen is out of date with protos/; run `make protos` and commit:")
                for c in changed:
                    print("  ", c)
                return 1
            print("shared/gen matches protos/")
            return 0
    if GEN.exists():
        shutil.rmtree(GEN)
    GEN.mkdir(parents=True)
    generate(GEN)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
