#!/usr/bin/env python3
"""Reports what `sam build` made of each function of template.yaml: its architecture and the size of the zip that
`sam deploy` uploads (`make package` runs `sam build`, then this).

Each function's build folder `.aws-sam/build/<LogicalId>/` holds the `bootstrap` binary that cargo-lambda built;
the zip is made here the way SAM packages a folder (deflate), so the figure is the upload's size.

    .venv/bin/python infra/local/package_report.py [--build-dir .aws-sam/build] [--template template.yaml]

Exits 1 and names the function when a function of the template has no built `bootstrap`, or when a zip is 5 MB
(5,000,000 bytes) or more: each function links only what it calls, and that bound keeps it so (issue 24).
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path

from cfn_template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]


def zipped_size(folder: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder))
    return len(buffer.getvalue())


def elf_machine(binary: Path) -> str:
    """The architecture an ELF binary was built for, read from its header."""
    header = binary.read_bytes()[:20]
    machines = {0x3E: "x86_64", 0xB7: "arm64"}
    return machines.get(int.from_bytes(header[18:20], "little"), "unknown") if header[:4] == b"\x7fELF" else "not ELF"


ZIP_LIMIT_BYTES = 5_000_000


def oversized(build_dir: Path, template_path: Path, limit: int = ZIP_LIMIT_BYTES) -> list[str]:
    """The functions whose zip is `limit` bytes or more."""
    return [f.logical_id for f in load_template(template_path).functions()
            if (build_dir / f.logical_id / "bootstrap").exists() and zipped_size(build_dir / f.logical_id) >= limit]


def report(build_dir: Path, template_path: Path) -> list[str]:
    rows = ["| function | binary | architecture | bootstrap | zipped |", "|---|---|---|---|---|"]
    missing = []
    for function in load_template(template_path).functions():
        bootstrap = build_dir / function.logical_id / "bootstrap"
        if not bootstrap.exists():
            missing.append(function.logical_id)
            continue
        rows.append(
            f"| {function.logical_id} | {function.binary} | {elf_machine(bootstrap)} | "
            f"{bootstrap.stat().st_size / 1_048_576:.1f} MiB | {zipped_size(bootstrap.parent) / 1_048_576:.1f} MiB |"
        )
    if missing:
        raise SystemExit(f"package_report: no bootstrap built for {', '.join(missing)} in {build_dir}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(REPO_ROOT / ".aws-sam" / "build"))
    parser.add_argument("--template", default=str(REPO_ROOT / "template.yaml"))
    args = parser.parse_args(argv)
    build_dir, template = Path(args.build_dir), Path(args.template)
    print("\n".join(report(build_dir, template)))
    too_large = oversized(build_dir, template)
    if too_large:
        print(f"package_report: zipped at {ZIP_LIMIT_BYTES:,} bytes or more: {', '.join(too_large)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
