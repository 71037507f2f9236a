#!/usr/bin/env bash
# Create ./.venv (if missing) and install this package into it with the given extras.
# Usage: scripts/setup_venv.sh runtime,replay
set -euo pipefail
cd "$(dirname "$0")/.."
extras="$1"
python3 -c 'import sys; assert sys.version_info >= (3, 10), "depth_node needs Python 3.10 or newer"'
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch is pinned in setup.py's `training` extra (2.13.0, CPU build where the machine offers one).
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
