"""ament_python package of the ast_robot ROS 2 nodes (build with `colcon build` in ros2_ws/)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "ast_robot_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*_launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="ast_robot maintainers",
    maintainer_email="maintainers@ast-robot.invalid",
    description="ROS 2 adapters of ast_robot: policy lifecycle node, MuJoCo twin, outcome recorder.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            f"policy_node = {PACKAGE}.entry:policy_main",
            f"twin_node = {PACKAGE}.entry:twin_main",
            f"recorder_node = {PACKAGE}.entry:recorder_main",
        ],
    },
)
