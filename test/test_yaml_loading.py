"""Every YAML file the package reads is read safely: a python object tag is refused, never run.

Parameter files, training configs and intrinsics files come from users, bags and downloads; PyYAML's
full/unsafe loaders would run ``!!python/object/apply`` tags while reading them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from depth_node.runtime.parameters import ParameterError, load_params_file
from training.config import ConfigError, load_yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("depth_node", "training", "launch", "benchmarks", "scripts", "test")
# A loader that can build python objects: yaml.load/load_all/full_load/unsafe_load (safe_load is fine),
# or any Loader= argument (yaml.load(f, Loader=SafeLoader) is safe, but safe_load says it plainly).
UNSAFE = re.compile(
    r"yaml\.(load|load_all|full_load|full_load_all|unsafe_load|unsafe_load_all)\s*\(|Loader\s*="
)


def test_python_object_tags_are_refused_with_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f'!!python/object/apply:os.system ["echo pwned > {marker}"]'
    params = tmp_path / "params.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    model_path: {payload}\n")
    with pytest.raises(ParameterError) as error:
        load_params_file(params)
    text = str(error.value)
    assert "\n" not in text and str(params) in text and "python/object/apply:os.system" in text

    config = tmp_path / "train.yaml"
    config.write_text(f"train:\n  lr: {payload}\n")
    with pytest.raises(ConfigError) as config_error:
        load_yaml(config)
    text = str(config_error.value)
    assert "\n" not in text and str(config) in text and "python/object/apply:os.system" in text
    assert not marker.exists()


def test_no_source_file_reads_yaml_with_a_loader_that_builds_objects() -> None:
    this_file = Path(__file__).resolve()
    offenders = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.resolve() == this_file:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if UNSAFE.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not offenders, "use yaml.safe_load:\n" + "\n".join(offenders)
    assert UNSAFE.search("yaml.load(text, Loader=yaml.FullLoader)") and not UNSAFE.search("yaml.safe_load(x)")
