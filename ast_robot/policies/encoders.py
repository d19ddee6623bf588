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

IMAGE_KEY, TEXT_KEY, WRIST_KEY = "camera", "instruction", "wrist_camera"
IMAGE_KEYS = (IMAGE_KEY, WRIST_KEY)  # the scene camera and the optional wrist camera (issue 20)
ObsSpec = dict[str, tuple[tuple[int, ...], str]]  # key -> (shape, numpy dtype name)


def obs_spec_from_space(space) -> ObsSpec:
    """``{key: (shape, dtype)}`` of a gymnasium ``Dict`` space (also what checkpoints store)."""
    spaces = getattr(space, "spaces", None)
    if not isinstance(spaces, Mapping) or not spaces:
        raise TypeError(f"obs_space must be a non-empty gymnasium.spaces.Dict, got {type(space).__name__}")
    spec = {key: (tuple(int(n) for n in sub.shape), np.dtype(sub.dtype).name) for key, sub in spaces.items()}
    for key, (shape, _) in spec.items():
        if key in IMAGE_KEYS and (len(shape) != 3 or 3 not in (shape[0], shape[-1])):
            raise ValueError(
                f"obs_space[{key!r}] must be an H x W x 3 (or 3 x H x W) image, got shape {shape}"
            )
        if key not in IMAGE_KEYS and len(shape) != 1:
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
        self.n_tokens = (hw[0] // patch_size) * (hw[1] // patch_size)

    def forward(self, image: Tensor) -> Tensor:
        x = self.stem(prepare_image(image))  # (B, D, h, w)
        x = x.permute(0, 2, 3, 1) + self.rows + self.cols  # (B, h, w, D)
        return x.flatten(1, 2)  # (B, h*w, D)


def _half_resolution_stem(channels: int) -> nn.Sequential:
    """The heat-map perceptions' conv stem: one feature vector per pixel of the half-resolution grid."""
    return nn.Sequential(
        nn.Conv2d(3, channels, 5, stride=2, padding=2), nn.GELU(),
        nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(),
        nn.Conv2d(channels, channels, 3, padding=1),
    )  # fmt: skip


def _half_resolution_grid(hw: tuple[int, int]) -> Tensor:
    """``(h/2 * w/2, 2)``: (row, col) in [-1, 1] of each cell of a half-resolution grid (soft-argmax targets)."""
    h, w = hw[0] // 2, hw[1] // 2
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([rows, cols], -1).reshape(h * w, 2)


class KeypointImageTokenizer(nn.Module):
    """Conv stem at half resolution -> one spatial soft-argmax keypoint per output channel -> one token each.

    For scenes whose objects cover a few pixels (a 2 cm cube is 2-3 pixels of a 64x64 scene camera), an
    8x8 patch token smears the object's place over its whole patch; the soft-argmax (Levine et al. 2016,
    "deep spatial autoencoders") gives each channel's expected image position to a fraction of a pixel,
    and a channel that learns "red cube" becomes that cube's position. Token = Linear(x, y, presence) +
    a learned per-keypoint identity, so attention can pick a keypoint by what it stands for.
    """

    def __init__(self, d_model: int, hw: tuple[int, int], n_keypoints: int, channels: int = 32) -> None:
        super().__init__()
        if hw[0] % 2 or hw[1] % 2:
            raise ValueError(f"the keypoint tokenizer needs an even image size, got {hw}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels // 2, 5, stride=2, padding=2), nn.GELU(),
            nn.Conv2d(channels // 2, channels, 3, padding=1),
        )  # fmt: skip  (stride 2 first: ~40% of the multiply-adds of a full-resolution first layer)
        self.head = nn.Sequential(nn.GELU(), nn.Conv2d(channels, n_keypoints, 1))
        self.channels = channels
        self.register_buffer("grid", _half_resolution_grid(hw))
        self.point = nn.Linear(3, d_model)
        self.ids = nn.Parameter(torch.randn(n_keypoints, d_model) * 0.02)
        self.n_tokens = n_keypoints

    def forward(self, image: Tensor, film: Tensor | None = None) -> Tensor:
        """``film`` ``(B, 2 * channels)``: FiLM (Perez et al. 2018) scale and shift of the stem's features,
        from the instruction, so that a keypoint can become "the cube the instruction names"."""
        x = self.stem(prepare_image(image))  # (B, C, h, w)
        if film is not None:
            scale, shift = film.chunk(2, -1)  # (B, C) each
            x = x * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        logits = self.head(x).flatten(2)  # (B, K, h*w)
        attn = logits.softmax(-1)
        xy = attn @ self.grid  # (B, K, 2) expected (row, col) in [-1, 1]
        presence = (logits.logsumexp(-1) - logits.mean(-1)).unsqueeze(-1) * 0.1  # (B, K, 1) how peaked the map is
        return self.point(torch.cat([xy, presence], -1)) + self.ids  # (B, K, D)


class InstructionTokenizer(nn.Module):
    """Byte-level language tokens: one embedding per byte value (0 is padding) plus positions."""

    def __init__(self, d_model: int, length: int) -> None:
        super().__init__()
        self.bytes = nn.Embedding(256, d_model)
        self.pos = nn.Parameter(torch.randn(length, d_model) * 0.02)
        self.n_tokens = length

    def forward(self, text: Tensor) -> Tensor:
        ids = text.round().long().clamp(0, 255)  # SB3 hands uint8 boxes over as floats
        return self.bytes(ids) + self.pos  # (B, L, D)


class PooledInstructionTokenizer(nn.Module):
    """The instruction as ONE token: byte embeddings -> a 1-D convolution over ``window`` bytes -> max over
    positions. Each channel is a detector of a short byte pattern anywhere in the text: a window of 9 bytes
    sees a colour word and the start of the noun after it ("red b(lock)", "red p(ad)"), which tells the
    cube's colour from the pad's whatever the template. One token instead of one per byte keeps the
    transformer's sequence short (the per-byte instruction was 64 of 131 tokens of the pick-place policy).
    """

    def __init__(self, d_model: int, length: int, window: int = 9) -> None:
        super().__init__()
        self.bytes = nn.Embedding(256, d_model)
        self.conv = nn.Conv1d(d_model, d_model, window, padding=window // 2)
        self.out = nn.Linear(d_model, d_model)
        self.n_tokens = 1

    def forward(self, text: Tensor) -> Tensor:
        ids = text.round().long().clamp(0, 255)  # (B, L)
        x = self.conv(self.bytes(ids).transpose(1, 2))  # (B, D, L)
        x = x.masked_fill((ids == 0).unsqueeze(1), float("-inf")).amax(-1)  # padding bytes never win the max
        x = torch.where(torch.isfinite(x), x, torch.zeros_like(x))  # a blank instruction (all padding): zeros
        return self.out(nn.functional.gelu(x)).unsqueeze(1)  # (B, 1, D)


class ScenePerception(nn.Module):
    """Camera + instruction + TCP -> the named cube and the named place relative to the TCP (world, decimetres).

    The first stage of the `two_stage` pixel student (issue 20). A conv stem at half resolution gives each
    pixel a feature vector; the instruction gives two queries, one for the named cube and one for the named
    pad, and a learned query finds the gripper. Each query's dot product with every pixel's feature is a heat
    map whose spatial soft-argmax is that object's image position (sub-pixel, for objects of a few pixels);
    pixel supervision (``target_pixels`` of the demonstrations) trains the three maps. Finding "the pixels
    whose colour matches the word" is the same function in every scene, so it generalizes to layouts it
    never saw; a free regression from the whole image memorised the 500 training layouts' pads.

    Geometry, not a free regression, turns image positions into world offsets: for each object, its image
    offset from the gripper ``d`` (2) maps to a world offset from the TCP ``A d + c`` (3), where ``A`` (3 x 2)
    and ``c`` (3) come from an MLP of the context only (the gripper's image position, the TCP (dm), the
    ``n_keypoints`` unconditioned keypoints that see the randomized camera's pose). A free MLP given the arm's
    state learned "the cube is under the gripper" (true in most demonstration frames) and steered the
    student 8 cm past the cube; the image-only world regression missed by 4-6 cm (camera jitter, depth).
    """

    def __init__(self, hw: tuple[int, int], text_length: int, n_keypoints: int = 8,
                 channels: int = 32, d_text: int = 64, hidden: int = 256) -> None:  # fmt: skip
        super().__init__()
        if hw[0] % 2 or hw[1] % 2:
            raise ValueError(f"the scene perception needs an even image size, got {hw}")
        self.stem = _half_resolution_stem(channels)
        self.text = PooledInstructionTokenizer(d_text, text_length)
        self.queries = nn.Linear(d_text, 2 * channels)  # the named cube's and the named pad's query
        self.gripper = nn.Parameter(torch.randn(1, 1, channels) * 0.1)
        self.free = nn.Conv2d(channels, n_keypoints, 1)
        self.temperature = nn.Parameter(torch.tensor(float(channels) ** -0.5))
        self.register_buffer("grid", _half_resolution_grid(hw))
        self.geometry = nn.Sequential(nn.Linear(3 * n_keypoints + 8, hidden), nn.GELU(),  # see forward's context
                                      nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 2 * 9))  # fmt: skip

    def forward(self, image: Tensor, text: Tensor, tcp: Tensor, with_presence: bool = False) -> tuple[Tensor, ...]:
        """``(B, 6)``: (cube - TCP, place - TCP) in dm, and ``(B, 3, 2)``: the cube's, the pad's and the
        gripper's image positions (row, col in [-1, 1], the half-resolution grid; what pixel supervision
        trains). ``tcp``: ``(B, 3)`` TCP position in dm. ``with_presence``: also ``(B, 3)``, how peaked the
        cube's, the pad's and the gripper's maps are (the values the context already uses)."""
        maps = self.stem(prepare_image(image))  # (B, C, h, w)
        queries = self.queries(self.text(text)[:, 0]).unflatten(-1, (2, -1))  # (B, 2, C)
        queries = torch.cat([queries, self.gripper.expand(queries.shape[0], -1, -1)], 1)  # (B, 3, C)
        named = (queries @ maps.flatten(2)) * self.temperature  # (B, 3, h*w)
        free = self.free(nn.functional.gelu(maps)).flatten(2)  # (B, K, h*w)
        logits = torch.cat([named, free], 1)  # (B, 3 + K, h*w)
        xy = logits.softmax(-1) @ self.grid  # (B, 3 + K, 2)
        presence = (logits.logsumexp(-1) - logits.mean(-1)) * 0.1  # (B, 3 + K)
        context = torch.cat([xy[:, 2:].flatten(1), presence, tcp], -1)  # no object position in the context
        out = self.geometry(context).unflatten(-1, (2, 9))  # (B, 2 objects, 3 x 2 matrix + 3 offset)
        offsets = (xy[:, :2] - xy[:, 2:3]).unsqueeze(-1)  # (B, 2, 2, 1) image offset from the gripper
        world = (out[..., :6].unflatten(-1, (3, 2)) @ offsets).squeeze(-1) + out[..., 6:]  # (B, 2, 3)
        if with_presence:
            return world.flatten(1), xy[:, :3], presence[:, :3]
        return world.flatten(1), xy[:, :3]


class WristPerception(nn.Module):
    """Wrist camera + instruction + TCP -> a second estimate of the named cube and place relative to the TCP,
    fused with the scene camera's (dm); the wrist camera is optional (``env.wrist_camera``, issue 20).

    The camera rides on the gripper, which ee_delta actions keep pointing down: an object's image position
    (row, col) and the TCP's height fix its offset from the TCP (a ray through the pixel, cut by the plane the
    object rests on), a smooth function of a few numbers that an MLP learns: (row, col, TCP (dm), the gripper's
    opening (dm), the heat map's peakedness, which object) -> offset (dm). The opening tells a cube held between
    the fingers (at the TCP) from one on the table at the same pixel: without it the wrist estimate of a carried
    cube was 2.8 cm off in z and the student placed it badly. No image feature and no other arm state enter, so
    it cannot learn "the cube is under the gripper" from the data's poses. The instruction's
    pooled embedding gives the cube and pad queries, as in :class:`ScenePerception`. A gate per object and
    axis, from the same context and the scene estimate, mixes the two estimates: the wrist's where its map
    is peaked (the object in view), the scene camera's elsewhere (far from the gripper).
    """

    def __init__(self, hw: tuple[int, int], d_text: int = 64, channels: int = 32, hidden: int = 128) -> None:
        super().__init__()
        if hw[0] % 2 or hw[1] % 2:
            raise ValueError(f"the wrist perception needs an even image size, got {hw}")
        self.stem = _half_resolution_stem(channels)
        self.queries = nn.Linear(d_text, 2 * channels)
        self.temperature = nn.Parameter(torch.tensor(float(channels) ** -0.5))
        self.register_buffer("grid", _half_resolution_grid(hw))
        self.geometry = nn.Sequential(nn.Linear(8, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                      nn.Linear(hidden, 3))  # fmt: skip  (one object: row, col, TCP, width, peak, kind)
        self.register_buffer("kind", torch.tensor([[1.0], [-1.0]]))  # the cube, the pad
        self.gate = nn.Sequential(nn.Linear(12, hidden), nn.GELU(), nn.Linear(hidden, 6))
        nn.init.zeros_(self.gate[-1].weight)
        nn.init.constant_(self.gate[-1].bias, -2.0)  # starts near the scene estimate (what a trained student had)

    def forward(self, image: Tensor, text: Tensor, tcp: Tensor, scene: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(fused (B, 6), wrist estimate (B, 6), image positions (B, 2, 2))``; ``text`` ``(B, d_text)``: the
        pooled instruction, ``tcp`` ``(B, 4)``: the TCP position and the gripper's opening, dm; ``scene``
        ``(B, 6)`` dm: the scene camera's estimate."""
        maps = self.stem(prepare_image(image))  # (B, C, h, w)
        queries = self.queries(text).unflatten(-1, (2, -1))  # (B, 2, C): the named cube, the named pad
        logits = (queries @ maps.flatten(2)) * self.temperature  # (B, 2, h*w)
        xy = logits.softmax(-1) @ self.grid  # (B, 2, 2)
        presence = (logits.logsumexp(-1) - logits.mean(-1)) * 0.1  # (B, 2)
        per_object = torch.cat([xy, tcp.unsqueeze(1).expand(-1, 2, -1), presence.unsqueeze(-1),
                                self.kind.expand(xy.shape[0], -1, -1)], -1)  # fmt: skip  (B, 2, 8)
        wrist = self.geometry(per_object).flatten(1)  # (B, 6)
        gate = torch.sigmoid(self.gate(torch.cat([tcp, presence, scene], -1)))  # (B, 6)
        return gate * wrist + (1 - gate) * scene, wrist, xy


def _random_shift(x: Tensor, amount: float) -> Tensor:
    """Each image translated by up to ``amount`` (normalized units) per axis, edges replicated."""
    B = x.shape[0]
    theta = torch.zeros(B, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(B, 2, device=x.device, dtype=x.dtype) * 2 - 1) * amount
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, padding_mode="border", align_corners=False)


class MultimodalTokenizer(nn.Module):
    """All modalities -> ``(B, T, d_model)`` tokens with modality-type embeddings and summary tokens."""

    def __init__(self, spec: ObsSpec, d_model: int, patch_size: int, n_summary: int, image_tokenizer: str = "patches",
                 n_keypoints: int = 32, instruction_tokenizer: str = "bytes", film: bool = False) -> None:  # fmt: skip
        super().__init__()
        if WRIST_KEY in spec:
            raise ValueError(f"observation key {WRIST_KEY!r} needs policy.type 'two_stage' (the wrist perception)")
        self.vector_keys = sorted(k for k in spec if k not in (IMAGE_KEY, TEXT_KEY))
        self.vectors = nn.ModuleDict({k: nn.Linear(spec[k][0][0], d_model) for k in self.vector_keys})
        self.image = _image_tokenizer(image_tokenizer, d_model, image_hw(spec[IMAGE_KEY][0]), patch_size,
                                      n_keypoints) if IMAGE_KEY in spec else None  # fmt: skip
        self.text = _text_tokenizer(instruction_tokenizer, d_model, spec[TEXT_KEY][0][0]) if TEXT_KEY in spec else None
        self.film = None
        if film:  # the instruction modulates the keypoint stem (needs both)
            if not isinstance(self.image, KeypointImageTokenizer) or self.text is None:
                raise ValueError("policy.instruction_film needs image_tokenizer 'keypoints' and an instruction input")
            self.film = nn.Linear(d_model, 2 * self.image.channels)
            nn.init.zeros_(self.film.weight)  # starts as the unmodulated stem
            nn.init.zeros_(self.film.bias)
        self.summary = nn.Parameter(torch.randn(n_summary, d_model) * 0.02)
        self.types = nn.Embedding(len(self.vector_keys) + 2, d_model)  # each vector key, text, image
        self.n_summary = n_summary

    def num_tokens(self) -> int:
        """Sequence length T this tokenizer produces."""
        n = self.n_summary + len(self.vector_keys)
        n += self.text.n_tokens if self.text is not None else 0
        return n + (self.image.n_tokens if self.image is not None else 0)

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        B = obs[self.vector_keys[0]].shape[0] if self.vector_keys else next(iter(obs.values())).shape[0]
        parts = [self.summary.expand(B, -1, -1)]  # (B, S, D)
        for i, key in enumerate(self.vector_keys):
            token = self.vectors[key](obs[key].float()) + self.types.weight[i]  # (B, D)
            parts.append(token.unsqueeze(1))
        film = None
        if self.text is not None:
            text = self.text(obs[TEXT_KEY])  # (B, L, D)
            parts.append(text + self.types.weight[-2])
            film = self.film(text.mean(1)) if self.film is not None else None
        if self.image is not None:
            image = self.image(obs[IMAGE_KEY], film) if film is not None else self.image(obs[IMAGE_KEY])
            parts.append(image + self.types.weight[-1])  # (B, image tokens, D)
        return torch.cat(parts, 1)  # (B, T, D)


def _image_tokenizer(kind: str, d_model: int, hw: tuple[int, int], patch_size: int, n_keypoints: int) -> nn.Module:
    if kind == "patches":
        return ImageTokenizer(d_model, hw, patch_size)
    if kind == "keypoints":
        return KeypointImageTokenizer(d_model, hw, n_keypoints)
    raise ValueError(f"policy.image_tokenizer {kind!r}: choose from ['patches', 'keypoints']")


def _text_tokenizer(kind: str, d_model: int, length: int) -> nn.Module:
    if kind == "bytes":
        return InstructionTokenizer(d_model, length)
    if kind == "pooled":
        return PooledInstructionTokenizer(d_model, length)
    raise ValueError(f"policy.instruction_tokenizer {kind!r}: choose from ['bytes', 'pooled']")


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
        self.keys = sorted(k for k in spec if k not in (*IMAGE_KEYS, TEXT_KEY))
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
