"""Stable-Baselines3 interop: a features extractor so `MultiInputPolicy` runs on our tokenizers and
sparse transformer.

    from stable_baselines3 import SAC
    from ast_robot.integrations.sb3.features import sparse_policy_kwargs
    model = SAC("MultiInputPolicy", env, policy_kwargs=sparse_policy_kwargs(PolicyConfig(d_model=64)))

SB3 hands the extractor preprocessed tensors: images scaled to [0, 1] and transposed to channel-first
(its `VecTransposeImage`), other uint8 boxes (the instruction bytes) as floats; the tokenizers accept both
forms. stable_baselines3 is optional and imported only by this package: ``pip install "ast-robot[sb3]"``.
"""

from __future__ import annotations

from typing import Any

import torch

from ast_robot.config.policy import PolicyConfig
from ast_robot.policies.encoders import MultimodalTokenizer, obs_spec_from_space
from ast_robot.policies.transformer import SparseTransformer

try:
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError('the SB3 integration needs stable-baselines3: pip install "ast-robot[sb3]"') from err


def _policy_config(policy: PolicyConfig | dict[str, Any] | None) -> PolicyConfig:
    if policy is None:
        return PolicyConfig()
    if isinstance(policy, PolicyConfig):
        return policy
    if isinstance(policy, dict):
        from ast_robot.config import from_dict

        return from_dict(PolicyConfig, policy, "policy")
    raise TypeError(f"policy must be a PolicyConfig, a dict or None, got {type(policy).__name__}")


class SparseTransformerExtractor(BaseFeaturesExtractor):
    """Dict observation -> tokens -> sparse transformer -> mean of the summary tokens ``(B, d_model)``.

    Only the tokenizers and transformer of ``policy`` (a `PolicyConfig` or its dict) are used; SB3 adds
    its own actor and critic heads on top.
    """

    def __init__(self, observation_space: Any, policy: PolicyConfig | dict[str, Any] | None = None) -> None:
        cfg = _policy_config(policy)
        super().__init__(observation_space, features_dim=cfg.d_model)
        spec = obs_spec_from_space(observation_space)
        self.tokenizer = MultimodalTokenizer(spec, cfg.d_model, cfg.patch_size, cfg.n_global)
        self.transformer = SparseTransformer.from_config(cfg, self.tokenizer.num_tokens())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        x = self.transformer(self.tokenizer(observations))  # (B, T, D)
        n = self.tokenizer.n_summary
        return x[:, :n].mean(1) if n else x.mean(1)  # (B, D)


def sparse_policy_kwargs(policy: PolicyConfig | dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """``policy_kwargs`` for an SB3 ``MultiInputPolicy`` that uses :class:`SparseTransformerExtractor`;
    ``extra`` (e.g. ``net_arch``) is passed through. The config travels as a plain dict so that SB3's
    saved models do not depend on our dataclass."""
    from ast_robot.config import to_dict

    return {"features_extractor_class": SparseTransformerExtractor,
            "features_extractor_kwargs": {"policy": to_dict(_policy_config(policy))}, **extra}  # fmt: skip


def policy_kwargs(cfg: Any) -> dict[str, Any]:
    """``policy_kwargs`` of a SAC run's ``MultiInputPolicy`` (``train.features``: an MLP or the sparse transformer);
    training and loading for acting build the same network from it."""
    if cfg.train.features == "mlp":
        return {"net_arch": list(cfg.policy.hidden_sizes)}
    return sparse_policy_kwargs(cfg.policy, net_arch=[256, 256])
