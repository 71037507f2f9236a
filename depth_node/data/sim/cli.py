"""``depth-sim``: synthetic drives as KITTI raw folders, rosbag2 files, or a contact sheet.

depth-sim kitti --out DIR --seeds 1 2 3 --frames 100 [--width 640 --height 192] [--stereo]
depth-sim bag --out BAG --seed 7 --frames 100 [--storage mcap] [--stereo --baseline 0.54]

``--stereo`` adds the right camera of a rectified pair (KITTI's image_03; the bag's /camera_right
topics), ``--baseline`` metres to the right of the left camera (KITTI's 0.54 by default).
depth-sim sheet --out sheet.png [--seed 0 --frames 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_node.data import bag_convert, kitti
from depth_node.data.sim.world import SyntheticDrive, WorldConfig


def _drive(args: argparse.Namespace, seed: int) -> SyntheticDrive:
    if args.baseline is not None and not args.stereo:
        # A mono drive has no right camera: the baseline would silently do nothing.
        raise ValueError(f"--baseline {args.baseline}: needs --stereo")
    stereo = {} if args.baseline is None else {"stereo_baseline": args.baseline}
    return SyntheticDrive(
        WorldConfig(
            seed=seed,
            num_frames=args.frames,
            width=args.width,
            height=args.height,
            stereo=args.stereo,
            **stereo,
        )
    )


def _cmd_kitti(args: argparse.Namespace) -> str:
    drive_dirs = []
    for number, seed in enumerate(args.seeds, start=args.first_drive):
        drive_dirs.append(
            kitti.write_drive(
                _drive(args, seed),
                args.out,
                date=args.date,
                drive_number=number,
                dense_gt=not args.no_dense_gt,
                progress=True,
            )
        )
    names = ", ".join(d.name for d in drive_dirs)
    return f"wrote {len(drive_dirs)} drive(s) x {args.frames} frames to {Path(args.out) / args.date}: {names}"


def _cmd_bag(args: argparse.Namespace) -> str:
    out = Path(args.out)
    if out.exists():
        raise FileExistsError(f"{out}: exists already, not overwriting")
    # World -> KITTI layout -> converter: the bag then holds exactly what a KITTI drive would give.
    with tempfile.TemporaryDirectory(prefix="depth-sim-") as tmp:
        drive_dir = kitti.write_drive(_drive(args, args.seed), tmp, drive_number=1, progress=True)
        bag_convert.convert_drive(
            drive_dir, out, args.storage, compressed=not args.no_compressed, progress=True
        )
    summary = bag_convert.bag_summary(out)
    topics = ", ".join(f"{topic} {n}" for topic, n in sorted(summary["topics"].items()))
    return f"wrote {out} ({args.storage}, {summary['bytes'] / 1e6:.1f} MB): {topics}"


def _cmd_sheet(args: argparse.Namespace) -> str:
    from depth_node.data.sim.contact_sheet import make_contact_sheet

    drive = _drive(args, args.seed)
    indices = (
        args.indices
        or np.linspace(0, len(drive) - 1, min(args.count, len(drive))).round().astype(int).tolist()
    )
    path = make_contact_sheet(drive, indices, Path(args.out))
    return f"wrote contact sheet of seed {args.seed}, frames {indices} to {path}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-sim", description="Synthetic driving world: data sets and bags."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def world_args(p: argparse.ArgumentParser, frames: int, stereo: bool = True) -> None:
        p.add_argument("--frames", type=int, default=frames, help="frames per drive")
        p.add_argument("--width", type=int, default=640)
        p.add_argument("--height", type=int, default=192)
        if not stereo:  # the contact sheet shows the left camera only
            p.set_defaults(stereo=False, baseline=None)
            return
        p.add_argument("--stereo", action="store_true", help="also render the right camera of a stereo pair")
        p.add_argument(
            "--baseline",
            type=float,
            metavar="METRES",
            help=f"stereo baseline (with --stereo; default {WorldConfig.stereo_baseline})",
        )

    p = sub.add_parser("kitti", help="write drives in KITTI raw layout (one per seed)")
    p.add_argument("--out", type=Path, required=True, help="KITTI root (the date folder goes inside)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--date", default="2011_09_26", help="date folder, YYYY_MM_DD")
    p.add_argument("--first-drive", type=int, default=1, help="drive number of the first seed")
    p.add_argument("--no-dense-gt", action="store_true", help="skip proj_depth/groundtruth PNGs")
    world_args(p, 100)
    p.set_defaults(run=_cmd_kitti)

    p = sub.add_parser("bag", help="write one drive as a rosbag2")
    p.add_argument("--out", type=Path, required=True, help="bag directory (must not exist)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", choices=sorted(bag_convert.STORAGES), default="sqlite3")
    p.add_argument("--no-compressed", action="store_true", help="skip /camera/image_raw/compressed")
    world_args(p, 100)
    p.set_defaults(run=_cmd_bag)

    p = sub.add_parser("sheet", help="contact sheet (images over their depth) of one drive")
    p.add_argument("--out", type=Path, default=Path("sheet.png"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--indices", type=int, nargs="+", help="frames to show (default: evenly spaced)")
    p.add_argument("--count", type=int, default=6, help="number of evenly spaced frames")
    world_args(p, 100, stereo=False)
    p.set_defaults(run=_cmd_sheet)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        print(args.run(args))
    except (kitti.KittiLayoutError, FileExistsError, ValueError) as exc:
        print(f"depth-sim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
