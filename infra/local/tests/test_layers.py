"""The layers as the compiler sees them: the core crate (`shared/core`, `tour-core`: the domain, the ports and the
use cases) depends on no I/O crate. Its dependency tree, as `cargo tree` resolves it offline from Cargo.lock, holds no
AWS SDK, HTTP client or server, Lambda runtime or socket layer, and tokio only for its clock, timers and joins (no
network, file, process or signal feature), so a rule or a use case reaches the world only through a port."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = re.compile(r"^(aws-|lambda_|lambda-|reqwest|hyper|axum|tower|rustls|h2|mio|socket2)")
TOKIO_IO_FEATURES = {"net", "fs", "process", "signal", "io-util", "io-std", "full"}


def tree(package: str) -> list[tuple[str, set[str]]]:
    """Every crate `package`'s normal build links (dev-dependencies aside), with the features it is built with."""
    out = subprocess.run(
        ["cargo", "tree", "--offline", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}|{f}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    crates = []
    for line in out.stdout.splitlines():
        if "|" in line:
            name, features = line.split("|", 1)
            crates.append((name.split()[0], {f for f in features.strip().split(",") if f}))
    return crates


def test_the_core_crate_links_no_io_crate():
    crates = tree("tour-core")
    names = {name for name, _ in crates}
    assert {"chrono", "minijinja", "async-trait"} <= names, sorted(names)
    io = sorted(name for name in names if FORBIDDEN.match(name))
    assert not io, f"tour-core depends on I/O crates: {io}"
    tokio = set().union(*(features for name, features in crates if name == "tokio"))
    assert not tokio & TOKIO_IO_FEATURES, f"tour-core builds tokio with I/O features: {sorted(tokio & TOKIO_IO_FEATURES)}"


def test_the_adapters_link_no_lambda_runtime():
    # tour-aws speaks to AWS and ResMan; how a function is invoked is tour-edge's business.
    names = {name for name, _ in tree("tour-aws")}
    assert {"aws-sdk-dynamodb", "reqwest", "tour-core"} <= names, sorted(names)
    runtime = sorted(name for name in names if name.startswith(("lambda_http", "lambda_runtime")))
    assert not runtime, f"tour-aws depends on the Lambda runtime: {runtime}"


def test_the_check_would_see_an_io_crate():
    # The edge crate, which holds the serve loops and links the adapters: the same reading finds them there.
    crates = tree("tour-edge")
    names = {name for name, _ in crates}
    assert {"aws-sdk-dynamodb", "reqwest", "lambda_http"} <= names
    assert any(FORBIDDEN.match(name) for name in names)
    tokio = set().union(*(features for name, features in crates if name == "tokio"))
    assert "net" in tokio
