//! The page embeds Chart.js from the npm registry, which `make dashboard-assets` (a step of `make venv`, so of every
//! `make` target that builds) puts into `vendor/`. Without it the build stops here, saying what to run.

fn main() {
    let vendored = std::path::Path::new("vendor/chart.umd.min.js");
    println!("cargo:rerun-if-changed={}", vendored.display());
    println!("cargo:rerun-if-changed=page");
    if !vendored.exists() {
        panic!(
            "functions/tour-dashboard/vendor/chart.umd.min.js is missing: run `make dashboard-assets` (npm ci of \
             infra/dashboard, then a copy of Chart.js's build)"
        );
    }
}
