"""Package list only (everything else is in pyproject.toml).

The top-level `envs/` folder holds MJCF data; it is installed as `ast_robot.mjcf` so code finds it with
`importlib.resources.files("ast_robot.mjcf")` both from an editable install and from a wheel.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["ast_robot", "ast_robot.*"]) + ["ast_robot.mjcf"],
    package_dir={"ast_robot.mjcf": "envs"},
)
