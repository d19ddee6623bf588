"""Policy networks with one API, chosen by ``policy.type`` (`sparse_multimodal`, `mlp`, `two_stage`).

Batches are dicts of tensors holding the observation keys (batched) plus ``action`` ``(B, A)``.

- ``forward(batch) -> (loss, info)``: mean behaviour-cloning loss of the configured head;
  ``forward(batch, per_sample=True) -> (loss (B,), embedding (B, F))`` for the gated trainer (DDP-safe).
- ``per_sample_loss(batch) -> (B,)``: the same loss per sample (the gated trainer scores with it).
- ``embed(batch) -> (B, F)``: the pooled summary features (the significance model's novelty uses them).
- ``act(obs) -> np.ndarray``: one unbatched numpy observation in, one action out, no gradient.
- ``actor(batch)`` / ``critic(batch, action)``: SAC's reparameterized actor and Q values.
- ``save(path)`` / ``load(path)``: through `ast_robot.core.checkpoint`; the round trip gives identical actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ast_robot.config.policy import PolicyConfig
from ast_robot.policies import encoders
from ast_robot.policies.estimate_filter import EstimateFilter
from ast_robot.policies.heads import HEADS, QCritic
from ast_robot.policies.transformer import SparseTransformer
from ast_robot.registry import Registry

POLICIES: Registry = Registry("policy type")
META_KEY = "policy_meta"
AUX_KEY, AUX_DIM, AUX_SCALE = "aux_target", 6, 10.0  # target object + goal positions (m), regressed in dm
PIXEL_KEY = "aux_pixels"  # (B, 4 or 6): the target object's, goal's (and TCP's) image positions (row, col, normalized)
WRIST_PIXEL_KEY = "aux_wrist_pixels"  # (B, 4): the target object's and goal's wrist-image positions (NaN: behind it)
ACTION_WEIGHT_KEY = "action_weight"  # (B,): 0 for rows without an action (single-render scenes), else 1


def pixel_scale(hw: tuple[int, int]) -> float:
    """Normalized soft-argmax units -> half-resolution pixels of an ``hw`` image (grid of ``h / 2`` cells)."""
    return (hw[0] // 2 - 1) / 2


class PolicyBase(nn.Module):
    """Heads, losses, `act`, save/load; subclasses define `features` and `embed`."""

    def __init__(self, cfg: PolicyConfig, obs_space: Any, action_dim: int, features: int) -> None:
        super().__init__()
        if not isinstance(action_dim, int) or isinstance(action_dim, bool) or action_dim < 1:
            raise ValueError(f"action_dim must be a positive integer, got {action_dim!r}")
        self.cfg, self.action_dim = cfg, action_dim
        self.spec = obs_space if isinstance(obs_space, dict) else encoders.obs_spec_from_space(obs_space)
        self.head = HEADS.get(cfg.head)(features, action_dim)
        self.normalizer = encoders.ObsNormalizer(self.spec)  # identity until fit on training data
        self.q = QCritic(features, action_dim, cfg.n_critics, cfg.critic_hidden) if cfg.n_critics else None
        self.aux = nn.Linear(features, AUX_DIM) if cfg.aux_weight > 0 else None

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def per_sample_loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Behaviour-cloning loss per sample ``(B,)``."""
        if "action" not in batch:
            raise ValueError(f"batch needs an 'action' entry for the loss; got keys {sorted(batch)}")
        return self._loss(self.embed(batch), batch)

    def _loss(self, h: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """The head's loss ``(B,)``, plus ``aux_weight`` x the auxiliary regression when the batch carries
        its targets (``AUX_KEY``: the privileged target object and goal positions of the demonstrations).
        It teaches the image and instruction tokens where the named object and goal are: the action loss
        alone says so only through small action differences."""
        loss = self.head.loss(h, batch["action"].float())
        if self.aux is not None and AUX_KEY in batch:
            loss = loss + self.cfg.aux_weight * (self.aux(h) - AUX_SCALE * batch[AUX_KEY].float()).square().mean(-1)
        return loss

    def forward(self, batch: Mapping[str, Tensor], per_sample: bool = False) -> tuple[Tensor, Any]:
        """``(mean loss, info)``; with ``per_sample``: ``(loss (B,), embedding (B, F))`` from one pass.

        Trainers call ``model(batch, per_sample=True)`` rather than ``embed``/``head.loss``: a DDP wrapper
        forwards only ``__call__`` (and runs its gradient hooks only there)."""
        if per_sample:
            if "action" not in batch:
                raise ValueError(f"batch needs an 'action' entry for the loss; got keys {sorted(batch)}")
            h = self.embed(batch)  # (B, F)
            return self._loss(h, batch), h
        losses = self.per_sample_loss(batch)  # (B,)
        loss = losses.mean()
        return loss, {"loss": float(loss.detach()), "loss_max": float(losses.detach().max())}

    def actor(self, batch: Mapping[str, Tensor], deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """SAC actor: ``(action (B, A), log_prob (B,))``; needs ``head: tanh_gaussian``."""
        if self.cfg.head != "tanh_gaussian":
            raise ValueError(f"actor() needs policy.head 'tanh_gaussian', got {self.cfg.head!r}")
        h = self.embed(batch)
        if deterministic:
            action = self.head.mode(h)
            return action, self.head.log_prob(h, action)
        return self.head.sample(h)

    def critic(self, batch: Mapping[str, Tensor], action: Tensor) -> Tensor:
        """Q values ``(B, n_critics)`` of ``action`` ``(B, A)``; needs ``n_critics > 0``."""
        if self.q is None:
            raise ValueError("critic() needs policy.n_critics > 0 (got 0)")
        return self.q(self.embed(batch), action)

    @torch.inference_mode()  # not no_grad: no version counters or view tracking on the per-step tensors
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The head's mode for one unbatched observation, in eval mode: float32 ``(A,)``.

        A policy in training mode is switched to eval for the call and back (a module-tree walk that
        costs ~0.5 ms on a CPU); deployments should call ``.eval()`` once (``load`` returns it so)."""
        was_training = self.training
        if was_training:
            self.eval()
        try:
            batch = encoders.to_tensors(obs, self.spec, next(self.parameters()).device)
            frozen = self.__dict__.get("_frozen")
            action = frozen(batch) if frozen is not None else self.head.mode(self.embed(batch))  # (1, A)
        finally:
            if was_training:
                self.train()
        return action[0].cpu().numpy().astype(np.float32)

    def reset_episode(self) -> None:
        """Start of an episode: forget what `act` kept from the last one (nothing here; a `two_stage` policy with
        ``estimate_filter`` keeps its estimates). Callers that run episodes call it after each reset."""

    @torch.no_grad()
    def optimize_for_inference(self) -> PolicyBase:
        """Trace and freeze ``head.mode(embed(obs))`` for one observation, which `act` then uses (about
        half the CPU time of eager `act` at deployment size). The frozen graph holds a copy of the current
        weights: ``train()`` drops it, and after any other weight change call this again. Returns self."""
        self.eval()
        device = next(self.parameters()).device
        example = {k: torch.zeros(shape, dtype=getattr(torch, dtype), device=device).unsqueeze(0)
                   for k, (shape, dtype) in self.spec.items()}  # fmt: skip
        frozen = torch.jit.freeze(torch.jit.trace(_ActGraph(self), (example,), strict=False).eval())
        torch.testing.assert_close(frozen(example), self.head.mode(self.embed(example)), atol=1e-5, rtol=1e-5)
        self.__dict__["_frozen"] = frozen  # outside _modules: not a submodule, not in the state dict
        return self

    def train(self, mode: bool = True) -> PolicyBase:
        if mode:
            self.__dict__.pop("_frozen", None)  # its weights would go stale while training
        return super().train(mode)

    def checkpoint_state(self) -> dict[str, Any]:
        """What `load` needs, for trainers that write their own checkpoints (merge into their state)."""
        from ast_robot.config import to_dict

        spec = {k: {"shape": list(shape), "dtype": dtype} for k, (shape, dtype) in self.spec.items()}
        meta = {"config": to_dict(self.cfg), "obs_spec": spec, "action_dim": self.action_dim}
        return {"model": self.state_dict(), META_KEY: meta}

    def save(self, path: str | Path, step: int = 0) -> Path:
        """Write a checkpoint under ``path`` (a run directory); returns the checkpoint directory."""
        import yaml

        from ast_robot.config import to_dict
        from ast_robot.core.checkpoint import save_checkpoint

        config_text = yaml.safe_dump({"policy": to_dict(self.cfg)}, sort_keys=False)
        return save_checkpoint(path, step, self.checkpoint_state(), config_text)

    @classmethod
    def load(cls, path: str | Path, map_location: str = "cpu") -> PolicyBase:
        """Rebuild the policy a checkpoint describes (any registered type), load its weights; eval mode."""
        from ast_robot.core.checkpoint import load_checkpoint, load_module_state

        ckpt = load_checkpoint(path, map_location=map_location)
        if META_KEY not in ckpt.state or "model" not in ckpt.state:
            raise ValueError(f"{ckpt.path} holds no policy (expected {META_KEY!r} and 'model' entries)")
        meta = ckpt.state[META_KEY]
        from ast_robot.config import from_dict

        cfg = from_dict(PolicyConfig, meta["config"], "policy")
        spec = {k: (tuple(v["shape"]), v["dtype"]) for k, v in meta["obs_spec"].items()}
        policy = build_policy(cfg, spec, int(meta["action_dim"]))
        load_module_state(policy, ckpt.state["model"], "policy")
        return policy.eval()


@POLICIES.register("sparse_multimodal")
class SparseMultimodalPolicy(PolicyBase):
    """Tokens of every modality -> sparse transformer -> pooled summary -> heads."""

    def __init__(self, cfg: PolicyConfig, obs_space: Any, action_dim: int) -> None:
        super().__init__(cfg, obs_space, action_dim, cfg.d_model)
        self.tokenizer = encoders.MultimodalTokenizer(self.spec, cfg.d_model, cfg.patch_size, cfg.n_global,
                                                      cfg.image_tokenizer, cfg.n_keypoints,
                                                      cfg.instruction_tokenizer, cfg.instruction_film)  # fmt: skip
        self.transformer = SparseTransformer.from_config(cfg, self.tokenizer.num_tokens())

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Mean of the summary (global) tokens, or of all tokens when there are none: ``(B, d_model)``."""
        x = self.transformer(self.tokenizer(self.normalizer(batch)))  # (B, T, D)
        n = self.tokenizer.n_summary
        return x[:, :n].mean(1) if n else x.mean(1)


@POLICIES.register("mlp")
class MLPPolicy(PolicyBase):
    """Baseline: concatenated vectors, an 8x8-pooled image and the instruction bytes -> MLP -> heads."""

    def __init__(self, cfg: PolicyConfig, obs_space: Any, action_dim: int) -> None:
        spec = obs_space if isinstance(obs_space, dict) else encoders.obs_spec_from_space(obs_space)
        sizes = [cfg.hidden_sizes[-1] if cfg.hidden_sizes else 0]
        super().__init__(cfg, spec, action_dim, sizes[0] or self._input_size(spec))
        layers: list[nn.Module] = []
        width = self._input_size(spec)
        for hidden in cfg.hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers)

    @staticmethod
    def _input_size(spec: encoders.ObsSpec) -> int:
        size = sum(shape[0] for key, (shape, _) in spec.items() if key != encoders.IMAGE_KEY)
        return size + (3 * 8 * 8 if encoders.IMAGE_KEY in spec else 0)

    def embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The last hidden layer ``(B, hidden_sizes[-1])``."""
        parts = []
        batch = self.normalizer(batch)
        for key in sorted(self.spec):
            x = batch[key]
            if key == encoders.IMAGE_KEY:
                x = nn.functional.adaptive_avg_pool2d(encoders.prepare_image(x), 8).flatten(1)  # (B, 192)
            elif key == encoders.TEXT_KEY:
                x = x.float() / 255.0
            parts.append(x.float())
        return self.net(torch.cat(parts, -1))


@POLICIES.register("two_stage")
class TwoStagePolicy(PolicyBase):
    """The pixel student of the deploy layout (issue 20) in two stages: perceive, then act as the teacher does.

    1. :class:`~ast_robot.policies.encoders.ScenePerception` estimates the named cube's and the named place's
       positions relative to the TCP from camera + instruction + the TCP's position (6 numbers, dm).
    2. An MLP (``hidden_sizes``) on the normalized proprioception and those 6 numbers gives the action: the
       relative vectors are the privileged policy's key inputs, so this stage is an ordinary state policy.

    Training (batches with the demonstrations' privileged positions, ``AUX_KEY``; needs ``aux_weight > 0``):
    the perception regresses the true relative positions (weight ``aux_weight``; with ``PIXEL_KEY`` in the batch
    also the named cube's and pad's image positions, weight ``pixel_weight``) and the action MLP learns
    from the TRUE ones plus Gaussian noise of ``teacher_noise`` m (teacher forcing: the action stage does not
    wait for a perception that is still wrong, and the noise makes it tolerate the estimate's error). No
    gradient flows from the action loss into the perception. `act()` and eval mode use the estimate.
    Observation: ``observation`` must be the proprioception alone (2n + 10; the TCP at [2n, 2n + 3)).
    With a ``wrist_camera`` key, :class:`~ast_robot.policies.encoders.WristPerception` refines the estimate
    (gated per object and axis); ``WRIST_PIXEL_KEY`` in a batch supervises its heat maps where the object is in
    view, and its own estimate there.
    """

    def __init__(self, cfg: PolicyConfig, obs_space: Any, action_dim: int) -> None:
        spec = obs_space if isinstance(obs_space, dict) else encoders.obs_spec_from_space(obs_space)
        missing = [k for k in ("observation", encoders.IMAGE_KEY, encoders.TEXT_KEY) if k not in spec]
        if missing or cfg.aux_weight <= 0:
            raise ValueError(f"policy.type 'two_stage' needs observation keys observation, camera and instruction "
                             f"(missing {missing}) and policy.aux_weight > 0 (got {cfg.aux_weight})")  # fmt: skip
        sizes = list(cfg.hidden_sizes) or [256]
        super().__init__(cfg, spec, action_dim, sizes[-1])
        self.aux = None  # the perception stage is the auxiliary regression
        proprio = spec["observation"][0][0]
        self.tcp = slice(proprio - 10, proprio - 7)  # TCP position in the proprioception (2n + 10 entries)
        self.width = proprio - 4  # the gripper's opening (m)
        self.pixel_scale = pixel_scale(encoders.image_hw(spec[encoders.IMAGE_KEY][0]))
        self.perception = encoders.ScenePerception(encoders.image_hw(spec[encoders.IMAGE_KEY][0]),
                                                   spec[encoders.TEXT_KEY][0][0], cfg.n_keypoints)  # fmt: skip
        self.wrist = None
        if encoders.WRIST_KEY in spec:
            wrist_hw = encoders.image_hw(spec[encoders.WRIST_KEY][0])
            self.wrist = encoders.WristPerception(wrist_hw)
            self.wrist_pixel_scale = pixel_scale(wrist_hw)
        layers: list[nn.Module] = []
        width = proprio + AUX_DIM
        for hidden in sizes:
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.net = nn.Sequential(*layers)
        self.reset_episode()

    def reset_episode(self) -> None:
        """Start of an episode: a fresh ``estimate_filter`` (None without one). A new object, not a cleared one: an
        act() still running from the last episode (the deployment's worker thread) finishes on the old one."""
        frames, gate = self.cfg.estimate_filter, self.cfg.place_presence
        self.__dict__["_filter"] = (
            EstimateFilter(frames[0], frames[1] if len(frames) > 1 else 0, gate) if frames else None
        )

    @torch.inference_mode()
    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """`PolicyBase.act` (exactly: the estimate as perceived) without ``estimate_filter``; with it, the action
        stage acts on the filtered estimate (eager: a frozen graph of `optimize_for_inference` is not used)."""
        filt = self.__dict__["_filter"]
        if filt is None:
            return super().act(obs)
        was_training = self.training
        if was_training:
            self.eval()
        try:
            batch = encoders.to_tensors(obs, self.spec, next(self.parameters()).device)
            tcp = AUX_SCALE * batch["observation"][:, self.tcp].float()
            opening = float(batch["observation"][0, self.width])
            if self.cfg.place_presence:  # the gate needs the scene pad map's peakedness
                estimate, _, _, presence = self._perceive(batch, with_presence=True)
                positions = filt(estimate, tcp, opening, float(presence[0, 1]))
            else:
                positions = filt(self.perceive(batch)[0], tcp, opening)
            action = self.head.mode(self.embed(batch, positions))  # (1, A)
        finally:
            if was_training:
                self.train()
        return action[0].cpu().numpy().astype(np.float32)

    def perceive(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Estimated (cube - TCP, place - TCP) ``(B, 6)`` in dm and the cube's, pad's and gripper's image positions
        ``(B, 3, 2)`` (the perception sees the image, the instruction and the TCP, no other proprioception)."""
        estimate, xy, _ = self.perceive_all(batch)
        return estimate, xy

    def perceive_all(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """`perceive`'s two tensors, and with a wrist camera (wrist estimate (B, 6), wrist image positions
        (B, 2, 2)), else None. The estimate is then the fused one."""
        return self._perceive(batch)[:3]

    def _perceive(self, batch: Mapping[str, Tensor], with_presence: bool = False) -> tuple[Any, ...]:
        """`perceive_all`'s three, and with ``with_presence`` the scene maps' peakedness ``(B, 3)`` (cube, pad,
        gripper; what ``place_presence`` gates on), else None."""
        tcp = AUX_SCALE * batch["observation"][:, self.tcp].float()
        estimate, xy, *presence = self.perception(
            batch[encoders.IMAGE_KEY], batch[encoders.TEXT_KEY], tcp, with_presence=with_presence
        )
        presence = presence[0] if presence else None
        if self.wrist is None:
            return estimate, xy, None, presence
        text = self.perception.text(batch[encoders.TEXT_KEY])[:, 0]
        arm = torch.cat([tcp, AUX_SCALE * batch["observation"][:, self.width : self.width + 1].float()], -1)
        fused, wrist, wrist_xy = self.wrist(batch[encoders.WRIST_KEY], text, arm, estimate)
        return fused, xy, (wrist, wrist_xy), presence

    def relative_truth(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The privileged (cube - TCP, place - TCP) ``(B, 6)`` in dm, from ``AUX_KEY`` (absolute, m)."""
        tcp = batch["observation"][:, self.tcp].float()
        return AUX_SCALE * (batch[AUX_KEY].float() - tcp.repeat(1, 2))

    def embed(self, batch: Mapping[str, Tensor], positions: Tensor | None = None) -> Tensor:
        """The action MLP's last hidden layer ``(B, hidden_sizes[-1])`` on ``positions`` (default: the estimate)."""
        proprio = self.normalizer(batch)["observation"]
        if positions is None:
            positions = self.perceive(batch)[0]
        return self.net(torch.cat([proprio, positions], -1))

    def _losses(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        if "action" not in batch:
            raise ValueError(f"batch needs an 'action' entry for the loss; got keys {sorted(batch)}")
        estimate, named_xy, wrist = self.perceive_all(batch)
        if AUX_KEY not in batch:  # no privileged positions: the action loss on the estimate
            h = self.embed(batch, estimate)
            return self.head.loss(h, batch["action"].float()), h
        truth = self.relative_truth(batch)
        positions = truth + torch.randn_like(truth) * (AUX_SCALE * self.cfg.teacher_noise) if self.training else estimate
        h = self.embed(batch, positions)
        perception = (estimate - truth).square().mean(-1)
        if PIXEL_KEY in batch:  # pixel supervision of the named cube's and pad's heat maps (half-res pixels)
            target = batch[PIXEL_KEY].float().unflatten(-1, (-1, 2))  # cube, place (and the TCP when recorded)
            error = self.pixel_scale * (named_xy[:, : target.shape[1]] - target)
            perception = perception + self.cfg.pixel_weight * error.square().mean((-2, -1))
        if wrist is not None and WRIST_PIXEL_KEY in batch:
            perception = perception + self._wrist_loss(wrist, truth, batch[WRIST_PIXEL_KEY].float())
        action = self.head.loss(h, batch["action"].float())
        if ACTION_WEIGHT_KEY in batch:  # scenes (no action) train the perception only
            action = action * batch[ACTION_WEIGHT_KEY].float()
        return action + self.cfg.aux_weight * perception, h

    def _wrist_loss(self, wrist: tuple[Tensor, Tensor], truth: Tensor, pixels: Tensor) -> Tensor:
        """Per sample: the wrist estimate's squared error (dm) and ``pixel_weight`` x its heat maps' (half-res
        pixels), each object counted only where its true image position lies inside the wrist image."""
        estimate, xy = wrist
        target = pixels.unflatten(-1, (2, 2))  # (B, 2 objects, row / col)
        seen = (target.abs() <= 1).all(-1).float()  # (B, 2); NaN (behind the camera) compares False
        target = torch.nan_to_num(target)
        world = (estimate - truth).square().unflatten(-1, (2, 3)).mean(-1)  # (B, 2)
        image = (self.wrist_pixel_scale * (xy - target)).square().mean(-1)  # (B, 2)
        return ((world + self.cfg.pixel_weight * image) * seen).sum(-1) / 2

    def per_sample_loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        return self._losses(batch)[0]

    def forward(self, batch: Mapping[str, Tensor], per_sample: bool = False) -> tuple[Tensor, Any]:
        if per_sample:
            return self._losses(batch)
        return super().forward(batch)


class _ActGraph(nn.Module):
    """``obs -> action mode``, the function `optimize_for_inference` traces."""

    def __init__(self, policy: PolicyBase) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        return self.policy.head.mode(self.policy.embed(obs))


def build_policy(cfg: PolicyConfig, obs_space: Any, action_dim: int) -> PolicyBase:
    """The policy class registered under ``cfg.type``."""
    return POLICIES.get(cfg.type)(cfg, obs_space, action_dim)


# A saved policy (weights + config) from a run folder, as trained; no contract checks (deployment loads
# through ast_robot.deploy.loader, which checks the checkpoint's contract first).
load_policy_weights = PolicyBase.load
