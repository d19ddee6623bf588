"""Tokenizers: each observation modality becomes tokens of width ``d_model``.

Observation keys (as the environments produce them): ``observation`` (proprioception, float vector),
``achieved_goal`` / ``desired_goal`` (3-vectors), optional ``camera`` (uint8 ``H x W x 3``) and optional
``instruction`` (uint8 bytes, zero-padded to a fixed length). Other 1-D float keys are tokenized like
proprioception. Token order: ``[summary | vectors (sorted by key) | instruction | image patches]``; the
summary tokens come first so that they can be the global tokens of the sparse attention.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

IMAGE_KEY, TEXT_KEY = "camera", "instruction"
ObsSpec = dict[str, tuple[tuple[int, ...], str]]  # key -> (shape, numpy dtype name)


def obs_spec_from_space(space) -> ObsSpec:
    """``{key: (shape, dtype)}`` of a gymnasium ``Dict`` space (also what checkpoints store)."""
    spaces = getattr(space, "spaces", None)
    if not isinstance(spaces, Mapping) or not spaces:
        raise TypeError(f"obs_space must be a non-empty gymnasium.spaces.Dict, got {type(space).__name__}")
    spec = {key: (tuple(int(n) for n in sub.shape), np.dtype(sub.dtype).name) for key, sub in spaces.items()}
    for key, (shape, _) in spec.items():
        if key == IMAGE_KEY and (len(shape) != 3 or 3 not in (shape[0], shape[-1])):
            raise ValueError(
                f"obs_space[{key!r}] must be an H x W x 3 (or 3 x H x W) image, got shape {shape}"
            )
        if key != IMAGE_KEY and len(shape) != 1:
            raise ValueError(f"obs_space[{key!r}] must be a 1-D vector, got shape {shape}")
    return spec


def image_hw(shape: tuple[int, ...]) -> tuple[int, int]:
    """(H, W) of a channel-last or channel-first 3-channel image shape."""
    return (shape[0], shape[1]) if shape[-1] == 3 else (shape[1], shape[2])


def prepare_image(x: Tensor) -> Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [0, 1]; float channel-first input (as SB3 hands
    over after its own scaling) is passed through."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
        return x.permute(0, 3, 1, 2) if x.shape[-1] == 3 else x
    return x if x.shape[1] == 3 else x.permute(0, 3, 1, 2)


class ImageTokenizer(nn.Module):
    """Conv stem (stride patch/2, then stride 2) -> one token per ``patch x patch`` pixels, with learned
    row and column position embeddings. Large strides keep `act()` cheap on a CPU: a stride-2 first
    layer cost about twice as much for these 64x64 images."""

    def __init__(self, d_model: int, hw: tuple[int, int], patch_size: int) -> None:
        super().__init__()
        if patch_size < 2 or patch_size % 2 or hw[0] % patch_size or hw[1] % patch_size:
            raise ValueError(f"patch_size must be even and divide the image size {hw}, got {patch_size}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, d_model // 2, patch_size // 2, stride=patch_size // 2), nn.GELU(),
            nn.Conv2d(d_model // 2, d_model, 2, stride=2),
        )  # fmt: skip
        self.rows = nn.Parameter(torch.zeros(hw[0] // patch_size, 1, d_model))
        self.cols = nn.Parameter(torch.zeros(1, hw[1] // patch_size, d_model))
        nn.init.normal_(self.rows, std=0.02)
        nn.init.normal_(self.cols, std=0.02)

    def forward(self, image: Tensor) -> Tensor:
        x = self.stem(prepare_image(image))  # (B, D, h, w)
        x = x.permute(0, 2, 3, 1) + self.rows + self.cols  # (B, h, w, D)
        return x.flatten(1, 2)  # (B, h*w, D)


class InstructionTokenizer(nn.Module):
    """Byte-level language tokens: one embedding per byte value (0 is padding) plus positions."""

    def __init__(self, d_model: int, length: int) -> None:
        super().__init__()
        self.bytes = nn.Embedding(256, d_model)
        self.pos = nn.Parameter(torch.randn(length, d_model) * 0.02)

    def forward(self, text: Tensor) -> Tensor:
        ids = text.round().long().clamp(0, 255)  # SB3 hands uint8 boxes over as floats
        return self.bytes(ids) + self.pos  # (B, L, D)


class MultimodalTokenizer(nn.Module):
    """All modalities -> ``(B, T, d_model)`` tokens with modality-type embeddings and summary tokens."""

    def __init__(self, spec: ObsSpec, d_model: int, patch_size: int, n_summary: int) -> None:
        super().__init__()
        self.vector_keys = sorted(k for k in spec if k not in (IMAGE_KEY, TEXT_KEY))
        self.vectors = nn.ModuleDict({k: nn.Linear(spec[k][0][0], d_model) for k in self.vector_keys})
        self.image = (
            ImageTokenizer(d_model, image_hw(spec[IMAGE_KEY][0]), patch_size) if IMAGE_KEY in spec else None
        )
        self.text = InstructionTokenizer(d_model, spec[TEXT_KEY][0][0]) if TEXT_KEY in spec else None
        self.summary = nn.Parameter(torch.randn(n_summary, d_model) * 0.02)
        self.types = nn.Embedding(len(self.vector_keys) + 2, d_model)  # each vector key, text, image
        self.n_summary = n_summary

    def num_tokens(self) -> int:
        """Sequence length T this tokenizer produces."""
        n = self.n_summary + len(self.vector_keys)
        n += self.text.pos.shape[0] if self.text is not None else 0
        return n + (self.image.rows.shape[0] * self.image.cols.shape[1] if self.image is not None else 0)

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        B = obs[self.vector_keys[0]].shape[0] if self.vector_keys else next(iter(obs.values())).shape[0]
        parts = [self.summary.expand(B, -1, -1)]  # (B, S, D)
        for i, key in enumerate(self.vector_keys):
            token = self.vectors[key](obs[key].float()) + self.types.weight[i]  # (B, D)
            parts.append(token.unsqueeze(1))
        if self.text is not None:
            parts.append(self.text(obs[TEXT_KEY]) + self.types.weight[-2])  # (B, L, D)
        if self.image is not None:
            parts.append(self.image(obs[IMAGE_KEY]) + self.types.weight[-1])  # (B, h*w, D)
        return torch.cat(parts, 1)  # (B, T, D)


def to_tensors(
    obs: Mapping[str, np.ndarray | Tensor], spec: ObsSpec, device: torch.device
) -> dict[str, Tensor]:
    """One observation (numpy, unbatched) -> a batch of one; keys and shapes checked against ``spec``."""
    missing = sorted(set(spec) - set(obs))
    if missing:
        raise ValueError(f"observation is missing key(s) {missing}; expected keys {sorted(spec)}")
    out = {}
    for key, (shape, dtype) in spec.items():
        arr = obs[key]
        t = (
            arr
            if isinstance(arr, Tensor)
            else torch.from_numpy(np.ascontiguousarray(arr, dtype=np.dtype(dtype)))
        )
        if tuple(t.shape) != shape:
            raise ValueError(f"observation[{key!r}] has shape {tuple(t.shape)}, expected {shape}")
        out[key] = t.to(device).unsqueeze(0)
    return out


class ObsNormalizer(nn.Module):
    """Standardizes the vector observations with statistics of the training data.

    Joint angles (rad), positions (m) and velocities differ in scale by orders of magnitude; without
    this a behaviour-cloning network learns the mean action first and the goal offset very slowly. The
    statistics are buffers, so they travel with the weights in every checkpoint. Untouched (identity)
    until :meth:`fit` is called.
    """

    def __init__(self, spec: ObsSpec) -> None:
        super().__init__()
        self.keys = sorted(k for k in spec if k not in (IMAGE_KEY, TEXT_KEY))
        for key in self.keys:
            size = spec[key][0][0]
            self.register_buffer(f"mean_{key}", torch.zeros(size))
            self.register_buffer(f"std_{key}", torch.ones(size))

    @torch.no_grad()
    def fit(self, data: Mapping[str, Tensor], min_std: float = 1e-2) -> None:
        """Set mean and std per feature from ``data[key]`` ``(N, D)``; ``min_std`` keeps constants finite."""
        for key in self.keys:
            x = torch.as_tensor(data[key]).float()
            getattr(self, f"mean_{key}").copy_(x.mean(0))
            getattr(self, f"std_{key}").copy_(x.std(0).clamp_min(min_std))

    def forward(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = dict(obs)
        for key in self.keys:
            out[key] = (obs[key].float() - getattr(self, f"mean_{key}")) / getattr(self, f"std_{key}")
        return out
