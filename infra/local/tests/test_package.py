"""Every function of template.yaml builds, and `make package`'s report reads what `sam build` made.

The arm64 release build that `sam build` runs (`make package`) compiles the whole AWS SDK again for another target
with full link-time optimisation: far too slow for every CI run on 2 cores. What it builds is each function's cargo
binary, so this builds those binaries for this machine and checks that each template function has one, and that no
function crate is left out of the template.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import REPO_ROOT
from cfn_template import load_template
import os

from package_report import ZIP_LIMIT_BYTES, elf_machine, main, oversized, report, zipped_size

TEMPLATE = REPO_ROOT / "template.yaml"


def cargo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["cargo", *args], cwd=REPO_ROOT, capture_output=True, text=True)


def test_every_template_function_is_a_cargo_binary_that_builds():
    built = cargo("build", "--workspace", "--bins", "--message-format", "json")
    assert built.returncode == 0, built.stderr[-3000:]
    executables = {}
    for line in built.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            executables[message["target"]["name"]] = message["executable"]
    functions = load_template(TEMPLATE).functions()
    for function in functions:
        assert function.metadata.get("BuildMethod") == "rust-cargolambda", function.logical_id
        assert function.binary in executables, f"{function.logical_id}: no cargo binary {function.binary!r} was built"
    crates = {path.name for path in (REPO_ROOT / "functions").iterdir() if (path / "Cargo.toml").exists()}
    assert crates == {f.binary for f in functions}, "every crate under functions/ is a function of the template"


def test_the_report_names_each_function_with_its_architecture_and_zipped_size(tmp_path):
    functions = load_template(TEMPLATE).functions()
    for n, function in enumerate(functions):
        folder = tmp_path / function.logical_id
        folder.mkdir()
        # An ELF header for arm64 (e_machine 0xB7), then incompressible-enough bytes.
        (folder / "bootstrap").write_bytes(b"\x7fELF" + bytes(14) + b"\xb7\x00" + bytes(range(256)) * (n + 1))
    rows = report(tmp_path, TEMPLATE)
    assert len(rows) == 2 + len(functions)
    assert all("| arm64 |" in row for row in rows[2:])
    last = tmp_path / functions[-1].logical_id
    assert 0 < zipped_size(last) < (last / "bootstrap").stat().st_size, "deflated, as SAM uploads it"


def test_a_function_left_unbuilt_is_named(tmp_path):
    with pytest.raises(SystemExit, match=load_template(TEMPLATE).functions()[0].logical_id):
        report(tmp_path, TEMPLATE)


def test_an_x86_binary_is_told_apart(tmp_path):
    binary = tmp_path / "bootstrap"
    binary.write_bytes(b"\x7fELF" + bytes(14) + b"\x3e\x00")
    assert elf_machine(binary) == "x86_64"



def test_a_zip_of_five_megabytes_or_more_fails_the_package_naming_its_function(tmp_path, capsys):
    functions = load_template(TEMPLATE).functions()
    for function in functions:
        (tmp_path / function.logical_id).mkdir()
        (tmp_path / function.logical_id / "bootstrap").write_bytes(b"\x7fELF" + bytes(14) + b"\xb7\x00" + bytes(1000))
    assert main(["--build-dir", str(tmp_path), "--template", str(TEMPLATE)]) == 0
    big = functions[0].logical_id
    # Random bytes do not deflate: the zip is as large as the binary.
    (tmp_path / big / "bootstrap").write_bytes(b"\x7fELF" + bytes(14) + b"\xb7\x00" + os.urandom(ZIP_LIMIT_BYTES))
    assert oversized(tmp_path, TEMPLATE) == [big]
    assert main(["--build-dir", str(tmp_path), "--template", str(TEMPLATE)]) == 1
    assert big in capsys.readouterr().err
