"""Significance model and gate configuration.

Every gating setting of a run lives under ``gate:``, and :func:`is_gated` is the one place that decides
whether a run is gated (``gate.enabled``). The trainers ask it; a :class:`~ast_robot.core.gate.Gate` object
itself always gates (the run decides whether to build one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ast_robot.config.schema import doc


@dataclass
class SignificanceConfig:
    """How each sample's significance score in [0, 1] is made from named components."""

    weights: dict[str, float] = doc(
        {"loss": 1.0}, "Component name -> weight (loss, uncertainty, novelty, learning_value, physical, random)."
    )
    stale_scores: bool = doc(False, "Reuse a sample's score from when it was last seen (skips its forward pass).")
    novelty_prototypes: int = doc(64, "Size of the bounded embedding memory of the novelty component.", gt=0)
    stats_momentum: float = doc(0.99, "EMA momentum of the running loss statistics.", gt=0, lt=1)
    loss_groups: int = doc(
        1, "The loss component z-scores each sample's loss within its row group (the trainer's LossOutput.groups), "
        "so a group whose loss has another scale (BC's action-free scene rows, group 1) is ranked among its own "
        "kind, not dropped wholesale; 1: one scale for all rows.", ge=1
    )


@dataclass
class GatedSACConfig:
    """Gated SAC's own settings (:class:`~ast_robot.integrations.sb3.gated_sac.GatedSAC`, ``train.type: sac``);
    its sample gate is the ``gate:`` section itself."""

    step_rate: float = doc(0.5, "Target fraction of gradient steps taken (the step gate).", gt=0, le=1)
    temperature_every_step: bool = doc(
        True, "The learned entropy temperature (a scalar) follows every scheduled step, also those the step gate "
        "skips (log-probabilities from the scoring forward, or the latest update's with stored_scores); false: only "
        "the steps taken."
    )
    target_every_step: bool = doc(
        False, "The target critics' Polyak update follows every scheduled step, also those the step gate skips (the "
        "target's time constant stays 1/tau env steps); false: only the steps taken."
    )
    candidate_factor: int = doc(
        1, "Replay batch drawn and scored per scheduled step, in train.batch_size units; the sample gate keeps its "
        "target fraction of it (2 with gate.target_rate 0.5: about batch_size of the more significant kept).", gt=0
    )
    stored_scores: bool = doc(
        False, "Score drawn transitions by the TD error and critic disagreement their last update measured "
        "(never-trained ones by the largest TD error seen), so skipped steps fetch and forward nothing; false: "
        "a scoring forward of every drawn batch."
    )


@dataclass
class GateConfig:
    """PI-controlled gate that keeps a target fraction of samples for the backward pass, and every other
    setting of gated training."""

    enabled: bool = doc(
        False, "Gate the run's training (the switch; see is_gated): the significance model and this gate choose the "
        "samples of each backward pass (train.type sac: GatedSAC's gated replay). False trains on every sample "
        "(the ungated baseline)."
    )
    scoring: Literal["forward_all", "stale_scores"] = doc(
        "forward_all", "Score by a full forward pass, or from stale scores so skipped samples skip the forward too "
        "(needs significance.stale_scores)."
    )
    batch: Literal["draw", "kept"] = doc(
        "draw", "`draw`: the gate keeps a fraction of each train.batch_size draw; `kept`: draw batch_size / "
        "target_rate so about batch_size are kept (InfoBatch-style: fewer full-size steps per epoch)."
    )
    anneal: float = doc(0.0, "Fraction of the final steps trained ungated (InfoBatch-style annealing).", ge=0, lt=1)
    mode: Literal["logistic", "top_fraction"] = doc("logistic", "Soft logistic gate or hard top fraction.")
    target_rate: float = doc(0.3, "Target fraction of samples kept (0, 1].", gt=0, le=1)
    temperature: float = doc(0.1, "Logistic temperature (score units); 0 makes it a hard threshold.", ge=0)
    hysteresis: float = doc(0.0, "Threshold lowered by this much for samples kept last time (score units).", ge=0)
    initial_threshold: float = doc(0.5, "Starting threshold (score units).")
    kp: float = doc(0.3, "Proportional gain (threshold per unit rate error).", ge=0)
    ki: float = doc(0.3, "Integral gain (threshold per unit accumulated rate error, per batch).", ge=0)
    ema: float = doc(0.5, "EMA factor of the measured activation rate (weight of the old value).", ge=0, lt=1)
    deadband: float = doc(0.002, "Rate errors smaller than this are ignored.", ge=0)
    integral_limit: float = doc(5.0, "Clamp of the accumulated rate error (anti-windup); ki * limit bounds its effect.", gt=0)
    threshold_min: float = doc(-1.0, "Lower bound of the threshold.")
    threshold_max: float = doc(2.0, "Upper bound of the threshold.")
    energy_budget: float | None = doc(
        None, "Optional cap on kept samples per 1,000 seen (None: no cap); at least 1000 * target_rate."
    )
    min_keep: int = doc(
        1, "Keep at least this many samples per batch (at most target_rate * batch size; >= 1 under DDP).", ge=0
    )
    importance_weights: bool = doc(
        True, "Weight kept samples by 1/p so the gradient stays unbiased; false: plain sum over kept / batch size."
    )
    min_probability: float = doc(
        0.02, "Floor of every sample's keep probability (logistic mode), so 1/p weights stay finite.", ge=0, lt=1
    )
    sac: GatedSACConfig = doc(factory=GatedSACConfig, help="Gated SAC's step gate and replay (train.type sac).")

    def __post_init__(self) -> None:
        if self.threshold_max <= self.threshold_min:
            raise ValueError(f"threshold_max ({self.threshold_max}) must be > threshold_min ({self.threshold_min})")
        self._check_rate_is_reachable()

    def _check_rate_is_reachable(self) -> None:
        """Overrides the threshold cannot move would pin it at a bound and wind the controller up."""
        if self.energy_budget is not None:
            if not 0 < self.energy_budget <= 1000:
                raise ValueError(f"gate.energy_budget {self.energy_budget!r}: expected kept samples per 1,000 "
                                 "seen in (0, 1000], or null for no cap")  # fmt: skip
            if self.energy_budget / 1000.0 < self.target_rate:
                raise ValueError(f"gate.energy_budget {self.energy_budget:g} per 1,000 is below gate.target_rate "
                                 f"{self.target_rate:g} ({1000 * self.target_rate:g} per 1,000): the cap, not the "
                                 "controller, would set the rate; raise energy_budget or lower target_rate")  # fmt: skip
        if self.mode == "logistic" and 0 < self.target_rate <= self.min_probability:  # <= 0: the bounds check says
            raise ValueError(f"gate.target_rate {self.target_rate:g} must exceed gate.min_probability "
                             f"{self.min_probability:g}: every sample is kept with at least that probability")  # fmt: skip


def is_gated(cfg: Any) -> bool:
    """Whether the run of experiment ``cfg`` trains gated: the one decision, read by every trainer."""
    return bool(cfg.gate.enabled)
