"""Interop with sundew-algorithms (optional extra): map its ``SundewConfig`` onto our ``GateConfig``.

sundew-algorithms 0.7.1 is per-event pure Python and its default controller is AIMD, not PI; we take
only its settings (threshold, target rate, gains, temperature, hysteresis) and run our vectorized Gate.
Energy accounting has no one-to-one mapping (sundew spends energy per event in arbitrary units), so
``energy_budget`` stays off. sundew has no probability floor; the mapping keeps ours (``min_probability``
0.02), since importance weights stay on and a zero floor would allow 1/p weights up to 1e12.
"""

from __future__ import annotations

from typing import Any

from ast_robot.config.gate import GateConfig
from ast_robot.core.gate import Gate

INSTALL_HINT = 'pip install "ast-robot[sundew]"'
SUNDEW_MIN_PROBABILITY = 0.02  # our keep-probability floor under the mapped gate (sundew has none)


def require_sundew() -> Any:
    """Import and return the ``sundew`` module, or raise ImportError with the install line."""
    try:
        import sundew
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"sundew-algorithms is not installed; run: {INSTALL_HINT}") from err
    return sundew


def gate_config_from_sundew(sundew_cfg: Any) -> GateConfig:
    """A ``GateConfig`` with the meaning of a ``SundewConfig``'s fields.

    sundew's ``ema_alpha`` weights the *new* observation; ours weights the old value, hence ``1 - alpha``.
    """
    needed = ("activation_threshold", "target_activation_rate", "ema_alpha", "adapt_kp", "adapt_ki",
              "error_deadband", "integral_clamp", "min_threshold", "max_threshold", "gate_temperature",
              "hysteresis_gap")  # fmt: skip
    missing = [name for name in needed if not hasattr(sundew_cfg, name)]
    if missing:
        raise TypeError(f"gate_config_from_sundew: expected a sundew SundewConfig, {type(sundew_cfg).__name__} lacks {missing}")
    s = sundew_cfg
    return GateConfig(
        mode="logistic",
        target_rate=float(s.target_activation_rate),
        temperature=float(s.gate_temperature),
        hysteresis=float(s.hysteresis_gap),
        initial_threshold=float(s.activation_threshold),
        kp=float(s.adapt_kp),
        ki=float(s.adapt_ki),
        ema=1.0 - float(s.ema_alpha),
        deadband=float(s.error_deadband),
        integral_limit=float(s.integral_clamp),
        threshold_min=float(s.min_threshold),
        threshold_max=float(s.max_threshold),
        min_probability=SUNDEW_MIN_PROBABILITY,  # not 0: 1/p weights stay below 50
    )


def gate_from_sundew(sundew_cfg: Any, seed: int | None = None) -> Gate:
    """A Gate with the settings of a sundew-algorithms ``SundewConfig`` (seeded by its ``rng_seed``)."""
    cfg = gate_config_from_sundew(sundew_cfg)
    return Gate(cfg, seed=int(getattr(sundew_cfg, "rng_seed", 0)) if seed is None else seed)


def sundew_config_from_gate(cfg: GateConfig, seed: int = 0) -> Any:
    """The inverse mapping, as a real ``SundewConfig`` (for side-by-side runs in bench/gate.py)."""
    sundew = require_sundew()
    return sundew.SundewConfig(
        activation_threshold=cfg.initial_threshold, target_activation_rate=cfg.target_rate,
        ema_alpha=1.0 - cfg.ema, adapt_kp=cfg.kp, adapt_ki=cfg.ki, error_deadband=cfg.deadband,
        integral_clamp=cfg.integral_limit, min_threshold=cfg.threshold_min, max_threshold=cfg.threshold_max,
        gate_temperature=cfg.temperature, hysteresis_gap=cfg.hysteresis, rng_seed=seed,
    )  # fmt: skip
