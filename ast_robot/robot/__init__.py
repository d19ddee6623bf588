"""What the envs, the deployment and the twin share about an arm.

Robot specs and limits (:mod:`.specs`), scene/model loading (:mod:`.scene`), kinematics and IK
(:mod:`.kinematics`, :mod:`.ik`, the compiled :mod:`.kernels`), the action and observation mapping
(:mod:`.actions`), workspace constants (:mod:`.workspace`), the one safety module every command passes
(:mod:`.safety`, with the measurement trust rule in :mod:`.trust`) and the checkpoint's deployment contract
(:mod:`.contract`). Imports only ``ast_robot.config``, ``ast_robot.registry`` and ``ast_robot.fileio`` from
this package; submodules import MuJoCo/numba lazily or on first use, so ``import ast_robot.robot`` is light.
"""
