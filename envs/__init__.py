"""MJCF robot and scene files (data only), installed as the package `ast_robot.mjcf`."""
