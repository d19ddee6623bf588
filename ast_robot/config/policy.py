"""Policy network configuration (sparse-attention multimodal transformer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import doc


@dataclass
class PolicyConfig:
    """Tokenizers, sparse transformer and heads of `SparseMultimodalPolicy`."""

    type: Literal["sparse_multimodal", "mlp", "two_stage"] = doc(
        "sparse_multimodal",
        "Network family: `sparse_multimodal`, `mlp`, or `two_stage` (the deploy layout's pixel student: a "
        "perception stage estimates the named cube and place relative to the TCP, an MLP acts on them).",
    )
    d_model: int = doc(64, "Token width (features).", gt=0)
    n_layers: int = doc(2, "Transformer blocks.", gt=0)
    n_heads: int = doc(4, "Attention heads; must divide d_model.", gt=0)
    mlp_ratio: float = doc(2.0, "Hidden width of each block's MLP as a multiple of d_model.", gt=0)
    dropout: float = doc(0.0, "Dropout probability.", ge=0, lt=1)
    patch_size: int = doc(8, "Image patch side (pixels).", gt=0)
    image_tokenizer: Literal["patches", "keypoints"] = doc(
        "patches",
        "Camera tokens: `patches` (one per patch_size x patch_size pixels) or `keypoints` (a conv stem at half "
        "resolution, one spatial soft-argmax keypoint token per channel: precise places of objects of a few pixels).",
    )
    n_keypoints: int = doc(32, "Keypoint tokens of the `keypoints` image tokenizer.", gt=0)
    instruction_tokenizer: Literal["bytes", "pooled"] = doc(
        "bytes",
        "Instruction tokens: `bytes` (one per byte, with positions) or `pooled` (one token: a 9-byte convolution "
        "max-pooled over the text; a far shorter sequence).",
    )
    instruction_film: bool = doc(
        False,
        "With `keypoints`: the instruction token scales and shifts the keypoint stem's features (FiLM), so a "
        "keypoint can track the object the instruction names.",
    )
    aux_weight: float = doc(
        0.0,
        "Weight of an auxiliary loss (BC from demonstrations that carry privileged goals): the pooled features "
        "also regress the target object's and the goal's positions (training only; act() ignores it).",
        ge=0,
    )
    block_size: int = doc(16, "Attention block length (tokens) for block-sparse masks.", gt=0)
    window_blocks: int = doc(1, "Local window: key blocks on each side of the query block.", ge=0)
    top_k_blocks: int = doc(
        2,
        "Learned top-k key blocks per query block (the policy caps it at its sequence's block count).",
        ge=0,
    )
    n_global: int = doc(2, "Global (summary) tokens that attend and are attended everywhere.", ge=0)
    attention_backend: Literal["dense", "flex", "flash", "full", "auto"] = doc(
        "auto",
        "Attention kernel: `dense` (masked SDPA, the sparse reference), `flex` (block-sparse FlexAttention), "
        "`flash` (flash-attn window), `full` (unmasked SDPA, no sparsity), `auto` (`full` below the crossover, "
        "sparse above).",
    )
    auto_crossover_tokens: int | None = doc(
        None,
        "`auto` runs full (unmasked) attention below this sequence length (tokens). None: the length measured "
        "for the device and dtype in use at the layer's density (ast_robot/policies/crossover.py; bench/attention.py "
        "measures a new device). A fixed 2048 was wrong on an H100: the flex layer lost 2.3-2.7x at 2k tokens.",
        gt=0,
    )
    head: Literal["deterministic", "gaussian", "tanh_gaussian"] = doc(
        "deterministic",
        "Action head: `deterministic` (MSE), `gaussian` (NLL) or `tanh_gaussian` (the SAC actor, actions in (-1, 1)).",
    )
    n_critics: int = doc(0, "Q networks of the critic head (SAC uses 2); 0 builds no critic.", ge=0)
    critic_hidden: int = doc(256, "Hidden width of each Q network (features).", gt=0)
    hidden_sizes: list[int] = doc([256, 256], "Hidden layer sizes of the `mlp` policy type and of `two_stage`'s "
                                  "action MLP.")  # fmt: skip
    teacher_noise: float = doc(0.01, "`two_stage`: std (m) of the Gaussian noise on the true relative positions "
                               "the action MLP trains on (teacher forcing).", ge=0)  # fmt: skip
    pixel_weight: float = doc(0.05, "`two_stage`: weight of the pixel supervision (squared half-resolution pixels) "
                              "of the named cube's and pad's heat maps, when the demonstrations carry "
                              "`target_pixels`.", ge=0)  # fmt: skip
    estimate_filter: list[int] = doc([], "`two_stage`, act() only (training never sees it): `[place_frames]` or "
                                     "`[place_frames, cube_frames]` feeds the action stage, per episode, the median "
                                     "of the perception's recent estimates where the object rests (the place: the "
                                     "last place_frames world estimates, 0 = all since the episode's start; the cube "
                                     "with cube_frames > 0: while the gripper is closed, its last cube_frames "
                                     "estimates in the TCP frame, as estimated while open); `[]`: the estimate as "
                                     "perceived. "
                                     "Callers reset it at each episode start (`reset_episode()`).")  # fmt: skip
    place_presence: float = doc(0.0, "`two_stage` with `estimate_filter`, act() only: of the last place_frames "
                                "frames, only those whose scene pad map's peakedness (the perception's presence) "
                                "is >= this enter the place's median (the FR3 step-8 student's map drops below ~1.6 "
                                "where the arm hides the pad and picks a wrong blob; another student's scale may "
                                "differ); where none of them does, all of them "
                                "(`estimate_filter` alone). 0: off.", ge=0)  # fmt: skip

    def __post_init__(self) -> None:
        if len(self.estimate_filter) > 2 or any(n < 0 for n in self.estimate_filter):
            raise ValueError(f"policy.estimate_filter: expected [], [place_frames] or [place_frames, cube_frames] "
                             f"with frames >= 0, got {self.estimate_filter}")  # fmt: skip
        if not self.place_presence >= 0:  # NaN too
            raise ValueError(f"policy.place_presence: expected a number >= 0 (0: off), "
                             f"got {self.place_presence}")  # fmt: skip
        if self.place_presence and not self.estimate_filter:
            raise ValueError(f"policy.place_presence ({self.place_presence}) gates the frames of "
                             f"policy.estimate_filter, which is off ([]): set estimate_filter, e.g. [10]")  # fmt: skip
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
