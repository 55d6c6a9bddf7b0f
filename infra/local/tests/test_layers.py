"""The layers as the compiler sees them: the domain crate (`crates/core`, `tour-core`) depends on no I/O crate. Its
dependency tree, as `cargo tree` resolves it offline from Cargo.lock, holds no AWS SDK, HTTP client or server,
Lambda runtime or async runtime, so a rule can never reach the network or the clock by itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = re.compile(r"^(aws-|lambda_|lambda-|reqwest|hyper|tokio|axum|tower|rustls|h2|mio|async-|futures)")


def dependencies(package: str) -> set[str]:
    """Every crate `package`'s normal build links (dev-dependencies and build scripts' aside)."""
    tree = subprocess.run(
        ["cargo", "tree", "--offline", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert tree.returncode == 0, tree.stderr
    return {line.split()[0] for line in tree.stdout.splitlines() if line.strip()}


def test_the_domain_crate_links_no_io_crate():
    crates = dependencies("tour-core")
    assert "chrono" in crates and "minijinja" in crates, sorted(crates)
    io = sorted(c for c in crates if FORBIDDEN.match(c))
    assert not io, f"tour-core depends on I/O crates: {io}"


def test_the_check_would_see_an_io_crate():
    # The shared crate, which holds the adapters, links them: the same reading finds them there.
    crates = dependencies("shared")
    assert {"aws-sdk-dynamodb", "reqwest", "tokio", "lambda_http"} <= crates
    assert any(FORBIDDEN.match(c) for c in crates)
