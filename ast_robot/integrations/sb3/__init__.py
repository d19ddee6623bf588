"""Stable-Baselines3 interop (the ``sb3`` extra: ``pip install "ast-robot[sb3]"``).

- :mod:`.features`: a features extractor so SB3's ``MultiInputPolicy`` runs on our tokenizers and sparse
  transformer, and the ``policy_kwargs`` of a run's config;
- :mod:`.gated_sac`: :class:`~.gated_sac.GatedSAC`, SB3's SAC with significance-gated replay, and
  :mod:`.replay_index`, the one place that touches SB3's replay-buffer internals;
- :mod:`.actor`: a saved SAC model (and its observation statistics) as ``act(obs) -> action``, weights only:
  what ``ast-robot eval`` and the deployment loader use.

Importing a submodule imports stable_baselines3; this package itself re-exports only the extractor.
"""

from ast_robot.integrations.sb3.features import SparseTransformerExtractor, sparse_policy_kwargs

__all__ = ["SparseTransformerExtractor", "sparse_policy_kwargs"]
