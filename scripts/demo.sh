#!/usr/bin/env bash
# The main job on a fresh machine: set up the runtime, make a synthetic drive as a rosbag2,
# replay it through the depth pipeline with the demo model in models/, print metrics and the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh runtime,replay
.venv/bin/depth-demo "$@"
