"""ast_robot: robot learning with a sim-to-real loop.

Importing the package registers the gymnasium environments (`ast_robot/ReachUR5e-v0`, ...) once
they exist; heavy modules (torch models, MuJoCo, rclpy) are imported only where used.
"""

__version__ = "0.1.0"


def _register_envs() -> None:
    try:
        from ast_robot.envs import register_envs
    except ImportError as err:  # envs not built yet or gymnasium missing
        if "ast_robot.envs" in str(err) or "register_envs" in str(err):
            return
        raise
    register_envs()


_register_envs()
