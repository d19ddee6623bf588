"""Policies: block-sparse attention (masks, scorer, backends), tokenizers, the sparse transformer and the
policy networks (`SparseMultimodalPolicy`, `MLPPolicy`) chosen by `policy.type`."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "SparseAttention": "ast_robot.policies.attention",
    "SparseAttentionCore": "ast_robot.policies.attention",
    "SparseMultimodalPolicy": "ast_robot.policies.policy",
    "MLPPolicy": "ast_robot.policies.policy",
    "build_policy": "ast_robot.policies.policy",
    "load_policy_weights": "ast_robot.policies.policy",
}


def __getattr__(name: str) -> Any:  # lazy, so `import ast_robot.policies.masks` stays light
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ast_robot.policies' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
