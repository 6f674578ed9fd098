#!/usr/bin/env bash
# The real gpiozero from PyPI (pinned) on gpiofs --sim through the gpiofs
# pin factory (contrib/gpiozero-gpiofs), in a venv under target/. Prints a
# closing line `gpiozero: N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

GPIOZERO_VERSION=2.0.1.post3
venv=target/gpiozero-venv

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "gpiozero==$GPIOZERO_VERSION"
# The factory is installed afresh each run, so the test sees this tree's code.
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./contrib/gpiozero-gpiofs
cargo build --release --bin gpiofs

exec "$venv/bin/python" tests/gpiozero/test_gpiozero.py
