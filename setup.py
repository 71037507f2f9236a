"""depth_node: an ament_python ROS 2 package that also installs with pip (extras below)."""

import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_node"
# colcon sets COLCON while it builds a ROS workspace: the car's install gets the runtime, the nodes and
# the ROS-free tools, not the torch-only training package (`pip install -e .[training]` brings it).
ROS_WORKSPACE = "COLCON" in os.environ

# Nothing in install_requires: on a ROS machine numpy, OpenCV and friends come from the distribution
# (rosdep), and colcon's console scripts must not refuse to start over a pip requirement.
# Without ROS, pick extras: `pip install -e .[runtime]` on the car (CPU) or `.[gpu]` (onnxruntime-gpu).
RUNTIME_COMMON = ["numpy>=1.24", "opencv-python-headless>=4.8", "rosbags>=0.10", "pyyaml>=6", "tqdm>=4.66"]
EXTRAS = {
    "runtime": RUNTIME_COMMON + ["onnxruntime>=1.17"],
    "gpu": RUNTIME_COMMON + ["onnxruntime-gpu>=1.17"],
    "replay": ["matplotlib>=3.7"],
    "training": [
        "torch==2.13.0",
        "onnx>=1.16",
        "onnxscript>=0.1",
        "tensorboard>=2.15",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        "pyyaml>=6",
        "h5py>=3.8",  # NYU Depth V2's labelled file is MATLAB v7.3 (HDF5)
        "scipy>=1.10",  # NYU's official splits.mat is MATLAB v5
    ],
    "test": ["pytest>=8", "ruff>=0.6", "import-linter>=2.1", "hypothesis>=6.100"],
}

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Monocular depth for ROS 2: self-supervised training and an ONNX Runtime depth node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(
        include=["depth_node", "depth_node.*"] + ([] if ROS_WORKSPACE else ["training", "training.*"])
    ),
    package_data={} if ROS_WORKSPACE else {"training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    install_requires=[],
    extras_require=EXTRAS,
    zip_safe=True,
    entry_points={
        "console_scripts": [
            # ROS 2 executables (need rclpy)
            "depth_node = depth_node.ros.node:main",
            "depth_eval_node = depth_node.ros.eval_node:main",
            "depth_lifecycle_node = depth_node.ros.lifecycle_node:main",
            # ROS-free command-line tools
            "depth-sim = depth_node.data.sim.cli:main",
            "depth-kitti2bag = depth_node.data.bag_convert:main",
            "depth-replay = depth_node.evaluation.replay_cli:main",
            "depth-demo = depth_node.evaluation.demo:main",
            *(
                []
                if ROS_WORKSPACE
                else [
                    "depth-train = training.train:main",
                    "depth-eval = training.evaluate:main",
                    "depth-export = training.export:main",
                ]
            ),
        ],
    },
)
