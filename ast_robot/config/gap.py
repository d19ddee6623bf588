"""Reality-gap analysis and retuning configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ast_robot.config.schema import doc


@dataclass
class GapConfig:
    """System identification and range retuning."""

    fit_method: Literal["gauss_newton", "cem"] = doc(
        "gauss_newton",
        "How the fit searches: `gauss_newton` scores each whole latency step at nominal physics and runs "
        "box-bounded Gauss-Newton (mujoco.minimize, the optimizer of mujoco.sysid) from the nominal values "
        "for the best `integer_candidates` of them; `cem` is the cross-entropy method then least squares. "
        "bench/gap_sysid.py measured both on the same twin episodes (single-parameter twins, 2 shared cores): "
        "gauss_newton median 6 s and 0.12% error, the true culprit alone named in every trial; cem median 32 s, "
        "0.17% error, and an extra parameter named in 1 trial of 6.",
    )
    gn_iterations: int = doc(50, "Most Gauss-Newton iterations per latency candidate.", ge=0)
    integer_candidates: int = doc(
        8,
        "Latency steps (best at nominal physics) each fitted by Gauss-Newton. Scored at nominal physics a soft "
        "arm's lag looks like delay: with 2, twins with gain x0.25, x0.3 + 3 steps and x0.2 + 2 steps were "
        "fitted a wrong latency and reported unexplained (or latency 4 for 3); with 8 all three were fitted "
        "exactly with nothing else named, in 29-50 s on 2 loaded cores (bench/results/twin_identify.md).",
        gt=0,
    )
    replay_threads: int = doc(
        1,
        "Threads of the replay: > 1 steps real episodes of one length together in one threaded mujoco.rollout "
        "call (bit-identical). On the 2 shared cores here it ranged from 1.9x faster to 3x slower than one "
        "thread with the machine's load (bench/gap_sysid.py; pick-and-place: 0.78x the time at load 6.5, "
        "1.5x at load 8.1, bench/sysid_refit_cost.py), so it is off by default; try it on idle cores.",
        gt=0,
    )
    cem_iterations: int = doc(8, "Cross-entropy-method iterations of the parameter fit.", gt=0)
    cem_population: int = doc(32, "Candidates per CEM iteration.", gt=1)
    cem_elite_fraction: float = doc(0.25, "Fraction of candidates kept as elites.", gt=0, lt=1)
    polish_evaluations: int = doc(
        60, "Least-squares refinement of the CEM's best fit: most residual evaluations (0 = off).", ge=0
    )
    deployment_latency_steps: float = doc(
        1.0,
        "Closed-loop delay (env control steps) that deploying through the policy node adds on top of the arm's "
        "own latency, added to the retuned latency range when the real records come from a deployment. The "
        "replay fits the arm from the commanded joint targets and cannot see it: asynchronous inference acts "
        "a tick late and each action is spread over the env period. Measured on the twin: real success with a "
        "hidden latency of L steps matched the simulator's at L + 1 (bench/results/sim2real.md). Not added when "
        "the env models the node's command path (env.deploy_pipeline): that env already trains with it.",
        ge=0,
    )
    min_fit_improvement: float = doc(
        0.5,
        "Fraction of the nominal trajectory MSE the system-identification fit must remove before ranges are "
        "retuned; a fit that explains less (e.g. on noise) is reported but the ranges are kept.",
        ge=0,
        le=1,
    )
    significance: float = doc(
        0.05,
        "Family-wise level of the per-parameter partial F-tests against the replay noise floor (Bonferroni "
        "over the fitted parameters): a parameter is named and retuned only below it.",
        gt=0,
        lt=1,
    )
    replay_floor_rad: float = doc(
        1e-4,
        "RMS joint error (rad) of replaying a noise-free nominal twin: what the replay cannot reproduce "
        "(integration, timing). Added to the sensor noise estimated from the data to form the noise floor.",
        ge=0,
    )
    max_unexplained_share: float = doc(
        0.05,
        "When the best fit still leaves a significant residual above this share of the nominal model's "
        "loss, the gap is reported as unexplained by the randomized parameters: no culprit is named and "
        "no range is retuned (the fitted values would be biased stand-ins for the real cause).",
        ge=0,
        le=1,
    )
    range_width_sigmas: float = doc(2.0, "Retuned range half-width in posterior standard deviations.", gt=0)
    min_relative_width: float = doc(
        0.05, "Smallest retuned half-width relative to the centre (never zero).", gt=0
    )
    search_expansion: float = doc(
        5.0, "System identification searches the prior range widened by this factor about its centre.", ge=1
    )
    search_widenings: int = doc(
        2,
        "Times the search box may be widened (by search_expansion again, never past a physical limit) beyond "
        "an end a significant parameter's fit is pinned at, each followed by a refit; 0 = never.",
        ge=0,
    )
    screen_tolerance: float = doc(
        1e-4,
        "Parameters that move the simulated joints less than this (rad RMS) across the whole search "
        "box are reported as not identifiable and left out of the fit.",
        ge=0,
    )
    max_replay_episodes: int = doc(
        8, "Real episodes replayed in simulation per candidate (the first N).", gt=0
    )
    camera_rate_hz: float = doc(
        2.0,
        "Camera frames a second (simulated time) the sim-to-real loop records from the twin for the visual gap "
        "analysis of pick-and-place (ast_robot.gap.visual: frames before each grasp against their re-renders); "
        "the twin then renders its cameras at this rate even for a policy that does not see them. 0 = none "
        "(the report says 'Camera: skipped'). Reach has no visual analysis and records none; nor does a loop on wall "
        "clock (--wall-clock: frames timed by their receipt, not aligned with the arm's pose they show).",
        ge=0,
        le=25,
    )
    classifier_folds: int = doc(5, "Cross-validation folds of the sim-vs-real classifier.", ge=2)
    confidence: float = doc(0.95, "Confidence level of reported intervals.", gt=0, lt=1)
