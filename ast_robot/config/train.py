"""Training configuration: common fields plus one variant per trainer (`type:` key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ast_robot.config.schema import Variant, doc, register_variant


@dataclass
class TrainConfig(Variant):
    """Fields every trainer shares. `type:` picks the trainer (bc, sac, vision, language). Gating settings live
    under `gate:` (config/gate.py); the keys that moved there are refused with their new place."""

    default_variant = "bc"
    moved_keys: ClassVar[dict[str, str]] = {
        "gated": "gate.enabled", "gate_mode": "gate.scoring", "gate_batch": "gate.batch", "gate_anneal": "gate.anneal",
        "step_gate_rate": "gate.sac.step_rate", "temperature_every_step": "gate.sac.temperature_every_step",
        "target_every_step": "gate.sac.target_every_step", "candidate_factor": "gate.sac.candidate_factor",
        "stored_scores": "gate.sac.stored_scores",
    }  # fmt: skip

    steps: int = doc(1000, "Optimizer steps (or env steps for RL).", gt=0)
    batch_size: int = doc(64, "Samples per batch.", gt=0)
    lr: float = doc(3e-4, "Learning rate.", gt=0)
    weight_decay: float = doc(0.0, "AdamW weight decay.", ge=0)
    grad_clip: float | None = doc(1.0, "Clip the global gradient norm to this (None: no clipping).")
    grad_accum: int = doc(1, "Micro-batches accumulated per optimizer step.", gt=0)
    amp: Literal["off", "bf16", "fp16"] = doc("off", "Mixed precision (fp16 only on CUDA).")
    activation_checkpointing: bool = doc(
        False, "Recompute transformer blocks in the backward pass instead of storing activations (less memory)."
    )
    checkpoint_every: int = doc(0, "Checkpoint every N steps (0: only at the end).", ge=0)
    keep_last: int = doc(
        0, "Keep only the newest N trainer checkpoints (ckpt-<step>/) of a run, pruning older ones; 0 keeps all.", ge=0
    )
    log_every: int = doc(50, "Write scalars every N steps.", gt=0)
    max_nonfinite_steps: int = doc(10, "Stop after this many steps with NaN/inf loss or gradients.", ge=0)
    device: str = doc("auto", "`auto`, `cpu`, `cuda` or `cuda:N`.")


@register_variant("bc")
@dataclass
class BCTrainConfig(TrainConfig):
    """Behaviour cloning from scripted-expert demonstrations."""

    demos: str = doc("", "Demonstration folder (written by `ast-robot demos collect`); empty: collect on the fly.")
    n_demos: int = doc(200, "Demonstrations to collect when `demos` is empty.", gt=0)
    demo_noise: float = doc(
        0.0, "DART-style noise injection while collecting on the fly: std (action units; 1 = env.max_ee_step) of "
        "Gaussian noise added to the TCP motion the env executes; the expert's clean action is what is cloned.", ge=0
    )
    eval_episodes: int = doc(50, "Randomized evaluation episodes after training.", gt=0)
    finetune_steps: int = doc(
        0, "Optimizer steps when fine-tuning a trained policy (`init_from`: the sim-to-real loop's later rounds, on "
        "the retuned randomization); 0: `steps`.", ge=0
    )
    finetune_demos: int = doc(
        0, "Demonstrations collected on the fly when fine-tuning; 0: `n_demos`. Set, the sim-to-real loop also keeps "
        "every round's demonstrations and trains each round on all of them.", ge=0
    )
    scenes: int = doc(
        0, "`policy.type: two_stage` only: single-render scenes (ast_robot.envs.scenes: a randomized reset, the arm "
        "posed by IK, one render, labelled by projection) generated at the start and mixed into the data; they "
        "train the perception only (no action). 0: demonstrations only.", ge=0
    )
    scenes_file: str = doc(
        "", "`train.scenes` rendered once into this .npz and read back by every later run of the same env, "
        "randomization, count and seed (a DAgger round's fine-tune otherwise re-renders them: ~6 min for 12000 at "
        "load 8); a file rendered for another run is refused. Empty: render them every run."
    )
    images_dir: str = doc(
        "", "A folder for the training data's camera images: stacked into memory-mapped files there, unlinked once "
        "mapped, so the kernel's page cache holds them (reclaimable), not this process's own memory (~3.3 GB for "
        "the 700-episode UR5e pixel pool + 12000 scenes: two such loops at once would not fit a shared 24 GB "
        "machine). Empty: in memory."
    )
    feedback_mix: float = doc(
        0.5, "Physical feedback (sim2real's gap weights) as a loss weight: w = (1 - mix) + mix * score / mean(score) "
        "over the demonstration steps (ast_robot/trainers/feedback.py). 0.5: half the loss follows where the real "
        "robot failed, half stays uniform, so no demonstration weighs less than half its unweighted share (the pool "
        "is never zeroed); 0: feedback off.", ge=0, lt=1
    )
    feedback_cap: float = doc(
        10.0, "The most a demonstration's normalised feedback score may exceed the mean (clipped, then renormalised): "
        "a few episodes near the real failures must not own the loss.", ge=1
    )
    data_on_device: bool = doc(
        False, "Hold the whole training set on train.device (BC): each step's batch is then gathered there, not "
        "copied from host memory (on an H100 the host gather of a 512-row pixel batch took 17-23 ms of a ~70 ms "
        "step, the same for every gate arm: bench/results/pixels_gated_gpu). The data must fit the device's memory."
    )


@register_variant("sac")
@dataclass
class SACTrainConfig(TrainConfig):
    """Stable-Baselines3 SAC (+HER for goal-conditioned tasks) with optional gated replay (`gate.enabled`,
    settings in `gate.sac`)."""

    her: bool = doc(True, "Use HerReplayBuffer (goal relabelling).")
    features: Literal["mlp", "sparse_attention"] = doc("mlp", "Features extractor of SB3's MultiInputPolicy.")
    learning_starts: int = doc(1000, "Env steps of random actions before learning.", ge=0)
    buffer_size: int = doc(1_000_000, "Replay buffer capacity (transitions).", gt=0)
    gamma: float = doc(0.95, "Discount factor.", gt=0, le=1)
    eval_episodes: int = doc(20, "Episodes per evaluation.", gt=0)
    eval_every: int = doc(1000, "Evaluate every N env steps (success, gradient steps, wall-clock).", gt=0)
    normalize_obs: bool = doc(
        True, "Normalize the float observations (running mean/std, SB3 VecNormalize; statistics saved beside sac.zip)."
    )
    gradient_steps: int = doc(1, "Gradient steps scheduled per env step (SB3 `gradient_steps`).", gt=0)
    tau: float = doc(0.005, "Polyak coefficient of the target critics (1/gradient step).", gt=0, le=1)
    ent_coef: str = doc("auto", "Entropy coefficient: `auto` (learned), `auto_<init>` (learned from init) or a number.")
    n_sampled_goal: int = doc(4, "HER: relabelled goals per real transition (fraction relabelled = k / (k + 1)).", gt=0)
    goal_selection: Literal["future", "final", "episode"] = doc(
        "future", "HER: where relabelled goals come from (achieved goals later in, at the end of, or anywhere in the episode)."
    )
    keep_best: bool = doc(
        True, "Keep the checkpoint of the best periodic evaluation in the run's best/ (sac.zip + observation statistics, "
        "swapped in atomically); `ast-robot eval` uses it when present."
    )
    lr_end_fraction: float = doc(
        1.0, "Learning rate at the last env step as a fraction of `lr`, decayed linearly from `lr` (1: constant).", gt=0, le=1
    )


@register_variant("vision")
@dataclass
class VisionTrainConfig(TrainConfig):
    """Image classification (built-in data: scikit-learn's digits)."""

    dataset: str = doc("digits", "`digits` or a folder of class subfolders of images.")
    model: Literal["vit", "cnn"] = doc("vit", "Classifier: ViT built from the sparse transformer, or a small CNN.")
    epochs: int = doc(10, "Passes over the training split (sets the number of steps; `steps` is ignored).", gt=0)
    image_size: int = doc(32, "Side (pixels) images from a folder are resized to; digits stay 8x8.", gt=0)
    patch_size: int = doc(2, "ViT patch side (pixels); must divide the image side.", gt=0)
    d_model: int = doc(64, "Width of the ViT / channels of the CNN's last layer.", gt=0)
    n_layers: int = doc(2, "Transformer blocks of the ViT.", gt=0)
    n_heads: int = doc(4, "Attention heads of the ViT (must divide d_model).", gt=0)
    test_fraction: float = doc(0.2, "Held-out fraction for evaluation.", gt=0, lt=1)


@register_variant("language")
@dataclass
class LanguageTrainConfig(TrainConfig):
    """Byte-level causal language model (built-in corpus: the Python standard library's sources)."""

    corpus: str = doc("stdlib", "`stdlib` or a folder of text files.")
    context: int = doc(256, "Context length (bytes).", gt=0)
    corpus_bytes: int = doc(2_000_000, "Bytes of corpus to use.", gt=0)
    d_model: int = doc(128, "Transformer width.", gt=0)
    n_layers: int = doc(2, "Transformer blocks.", gt=0)
    n_heads: int = doc(4, "Attention heads (must divide d_model).", gt=0)
    block_size: int = doc(32, "Attention block (tokens) of the sparse causal attention.", gt=0)
    window_blocks: int = doc(2, "Local window (blocks) each query block attends to.", ge=0)
    top_k_blocks: int = doc(1, "Extra key blocks chosen by the learned scorer per query block.", ge=0)
    held_out_fraction: float = doc(0.1, "Fraction of corpus files held out for bits-per-byte evaluation.", gt=0, lt=1)
    eval_windows: int = doc(128, "Held-out windows evaluated (0: all).", ge=0)
    cuda_graphs: bool = doc(False, "Replay each training micro-batch's forward and backward from CUDA graphs "
                            "(CUDA, amp off, no DDP): cuts the host's launch overhead of the sparse layers.")
