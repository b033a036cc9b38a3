#!/usr/bin/env bash
# Start-up time, peak memory and zip size of every function as deployed:
# a release build of each function, zipped as Lambda takes it (`bootstrap`
# at the root), then measured against a minimal Lambda Runtime API
# (infra/local-gateway/src/bin/startup.rs). Prints a Markdown table.
#
# The functions deploy for arm64 (template.yaml); where the arm64 standard
# library cannot be installed the build is for this machine's target, which
# is what this script measures (it says which).
set -euo pipefail
cd "$(dirname "$0")/../.."

# One crate per function under functions/, named as its binary.
mapfile -t functions < <(ls functions)
target_args=()
triple=$(rustc -vV | sed -n 's/^host: //p')
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
    && command -v cargo-lambda >/dev/null; then
  echo "building with cargo lambda for arm64" >&2
  cargo lambda build --release --arm64 "${functions[@]/#/--bin=}" >&2
  bin_dir=target/lambda
  triple=aarch64-unknown-linux-gnu
else
  echo "arm64 standard library or cargo-lambda not installed: building for the host ($triple)" >&2
  args=()
  for f in "${functions[@]}"; do args+=(-p "$f"); done
  # STARTUP_SKIP_BUILD=1 measures the release binaries already built.
  [[ "${STARTUP_SKIP_BUILD:-}" == 1 ]] || cargo build --release "${args[@]}" >&2
  bin_dir=target/release
fi

zips=.local/startup/zips
rm -rf "$zips" && mkdir -p "$zips"
python=python3
[[ -x .venv/bin/python ]] && python=.venv/bin/python
for f in "${functions[@]}"; do
  bin="$bin_dir/$f"
  [[ -f "$bin_dir/$f/bootstrap" ]] && bin="$bin_dir/$f/bootstrap"
  "$python" - "$bin" "$zips/$f.zip" <<'PY'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(src, "rb") as f:
        z.writestr(info, f.read())
PY
done

echo "target: $triple" >&2
# The measuring tool itself needs no optimisation.
flat=.local/startup/bin
rm -rf "$flat" && mkdir -p "$flat"
for f in "${functions[@]}"; do
  if [[ -f "$bin_dir/$f/bootstrap" ]]; then cp "$bin_dir/$f/bootstrap" "$flat/$f"; else cp "$bin_dir/$f" "$flat/$f"; fi
done
cargo run -q -p local-gateway --bin startup -- "$flat" "$zips"
