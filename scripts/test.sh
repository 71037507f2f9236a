#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up .venv with every extra, lint (ruff, import layering), run pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh runtime,replay,training,test
# OpenMP threads that busy-wait make torch ~10x slower on a shared 2-core machine.
export OMP_WAIT_POLICY=PASSIVE
.venv/bin/ruff check .
.venv/bin/lint-imports --no-cache   # the layering of .importlinter: imports point down, no cycles
.venv/bin/python -m pytest "$@"
