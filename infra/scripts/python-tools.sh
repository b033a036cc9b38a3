#!/usr/bin/env bash
# Installs the Python tools the project runs (moto server for the local AWS
# stack, cfn-lint for template.yaml) into a project-local virtualenv, .venv/.
# Idempotent: a second run with the same pins does nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
requirements="$root/infra/requirements.txt"
stamp="$venv/.requirements.sha256"

python="${PYTHON:-python3}"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

echo "==> installing Python tools into $venv (moto server, cfn-lint)" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
