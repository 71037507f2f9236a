"""Checkpoint files (training/checkpoint.py): atomic save, checked load, the depth net rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from depth_node.files import keep_copy
from training.checkpoint import (
    RESUME_KEYS,
    depth_net_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from training.networks import build_depth_net

MODEL = {"backbone": "resnet18", "num_scales": 1}


def test_save_load_and_rebuild_the_depth_net(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_depth_net(MODEL).eval()
    path = save_checkpoint(
        tmp_path / "ckpts" / "last.pt", {"config": {"model": MODEL}, "depth_net": net.state_dict()}
    )
    assert path.is_file() and not path.with_name("last.pt.tmp").exists()
    rebuilt = depth_net_from_checkpoint(load_checkpoint(path))
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.predict_depth(image), net.predict_depth(image))
    assert not rebuilt.training


def test_missing_keys_and_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"none\.pt"):
        load_checkpoint(tmp_path / "none.pt")
    path = save_checkpoint(tmp_path / "model_only.pt", {"config": {}, "depth_net": {}})
    assert set(load_checkpoint(path)) == {"config", "depth_net"}  # enough for export and evaluation
    with pytest.raises(ValueError, match=r"model_only\.pt: missing \['pose_net'"):
        load_checkpoint(path, RESUME_KEYS)  # not enough to resume training
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="expected a dict"):
        load_checkpoint(tmp_path / "list.pt")


def test_an_epoch_copy_shares_the_file_until_last_is_replaced(tmp_path: Path) -> None:
    last = save_checkpoint(tmp_path / "last.pt", {"config": {}, "depth_net": {"w": torch.ones(3)}})
    epoch = keep_copy(last, tmp_path / "epoch_001.pt")
    assert epoch.stat().st_ino == last.stat().st_ino  # a hard link: no second copy on disk
    save_checkpoint(last, {"config": {}, "depth_net": {"w": torch.zeros(3)}})  # the next step's save
    assert torch.equal(load_checkpoint(epoch)["depth_net"]["w"], torch.ones(3))
    assert torch.equal(load_checkpoint(last)["depth_net"]["w"], torch.zeros(3))
    keep_copy(last, epoch)  # an existing name is replaced, as a resumed run re-saving an epoch does
    assert torch.equal(load_checkpoint(epoch)["depth_net"]["w"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_001.pt", "last.pt"]
