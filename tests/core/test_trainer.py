"""The gated trainer on a real (small) torch model: modes, counting, resume, AMP, accumulation, guards."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from ast_robot.config import from_dict
from ast_robot.config.gate import GateConfig, SignificanceConfig
from ast_robot.config.train import TrainConfig
from ast_robot.core.callbacks import Callback, EvalCallback
from ast_robot.core.data import TensorData
from ast_robot.core.gate import Gate
from ast_robot.core.significance import SignificanceModel
from ast_robot.core.trainer import LossOutput, Trainer

X = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] + X[:, 1] > 0).long()


def ce_loss(model, batch):
    logits = model(batch.inputs)
    losses = nn.functional.cross_entropy(logits.float(), batch.targets, reduction="none")
    return LossOutput(losses, logits, embeddings=batch.inputs, grad_target=logits)


def make(mode: str = "off", steps: int = 20, seed: int = 0, loss_fn=ce_loss, model=None, callbacks=(), **train):
    torch.manual_seed(seed)
    model = model or nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2))
    cfg = from_dict(TrainConfig, {"type": "vision", "steps": steps, "batch_size": 32, "lr": 1e-2, **train})
    weights = {"loss": 1.0, "uncertainty": 0.5, "novelty": 0.5, "learning_value": 0.5}
    sig = SignificanceModel(SignificanceConfig(weights=weights, stale_scores=mode == "stale_scores"))
    gate = None if mode == "off" else Gate(GateConfig(target_rate=0.3, scoring=mode), seed=seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.9)
    return Trainer(model, loss_fn, opt, TensorData(X, Y), cfg, significance=sig, gate=gate, scheduler=sched,
                   callbacks=callbacks, seed=seed, show_progress=False)  # fmt: skip


def params(trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


@pytest.mark.parametrize("mode", ["off", "forward_all", "stale_scores"])
def test_modes_count_forward_and_backward_samples_honestly(mode):
    trainer = make(mode, steps=30)
    c = trainer.fit()
    assert c.samples_seen == 30 * 32
    if mode == "off":
        assert c.forward_samples == c.backward_samples == c.samples_seen
    elif mode == "forward_all":  # scoring forward of every sample + forward of the kept
        assert c.forward_samples == c.samples_seen + c.backward_samples
    else:  # skipped samples skip the forward too; never-scored ones (first epoch) are always kept
        assert c.forward_samples == c.backward_samples
        assert c.backward_samples >= len(X) + trainer.gate.kept
    if mode != "off":
        assert 0.2 < trainer.gate.activation_rate < 0.4  # the rate the controller holds
        assert c.kept_fraction < 0.6


def test_forward_all_fits_score_statistics_on_the_whole_batch_not_the_kept():
    """The kept samples are the high scorers: statistics fitted on them alone drift up, so population
    scores fall below 0.5. The scoring forward saw the whole batch; the statistics must come from it."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    cfg = from_dict(TrainConfig, {"type": "vision", "steps": 40, "batch_size": 32})
    sig = SignificanceModel(SignificanceConfig(weights={"loss": 1.0, "learning_value": 0.5}))
    value_net = [p.detach().clone() for p in sig.components["learning_value"].net.parameters()]
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # a fixed model: one fixed loss population
    trainer = Trainer(model, ce_loss, frozen, TensorData(X, Y), cfg, significance=sig,
                      gate=Gate(GateConfig(target_rate=0.3)), show_progress=False)  # fmt: skip
    trainer.fit()
    with torch.no_grad():
        population = torch.log1p(nn.functional.cross_entropy(model(X), Y, reduction="none"))
    stats = sig.components["loss"].stats
    assert abs(float(stats.mean) - float(population.mean())) < 0.15 * float(population.std())
    assert abs(float(stats.var.sqrt()) / float(population.std()) - 1) < 0.2
    scores = stats.normalize(population)
    assert 0.45 < float(scores.mean()) < 0.55  # was ~0.31 with kept-only statistics
    # the gradient-norm predictor still learns, from the kept samples' measured norms
    assert any(not torch.equal(a, b) for a, b in zip(value_net, sig.components["learning_value"].net.parameters()))


def test_learning_value_without_a_grad_target_is_a_clear_error():
    def no_grad_target(model, batch):
        out = ce_loss(model, batch)
        return out._replace(grad_target=None)

    trainer = make("forward_all", steps=2, loss_fn=no_grad_target)  # make() weights name learning_value
    with pytest.raises(ValueError, match="'learning_value' learns from per-sample gradient norms, but .* no grad_target"):
        trainer.fit()


@pytest.mark.parametrize(("min_keep", "world", "needle"), [
    (0, 2, "gate.min_keep 0: must be >= 1 with 2 DDP processes"),
    (16, 1, r"gate.min_keep 16 exceeds gate.target_rate \* batch size \(0.3 \* 32"),
])  # fmt: skip
def test_gate_settings_that_would_hang_or_bias_training_are_rejected(min_keep, world, needle):
    m = nn.Linear(8, 2)
    cfg = from_dict(TrainConfig, {"type": "vision", "steps": 1, "batch_size": 32})
    sig = SignificanceModel(SignificanceConfig())
    with pytest.raises(ValueError, match=needle):
        Trainer(m, ce_loss, torch.optim.SGD(m.parameters(), 0.1), TensorData(X, Y), cfg, significance=sig,
                gate=Gate(GateConfig(min_keep=min_keep)), world=world)  # fmt: skip


def test_gated_training_learns():
    trainer = make("stale_scores", steps=150)
    trainer.fit()
    trainer.model.eval()
    assert (trainer.model(X).argmax(1) == Y).float().mean() > 0.9


@pytest.mark.parametrize("mode", ["off", "stale_scores", "forward_all"])
def test_checkpoint_resume_equals_uninterrupted_run(mode, tmp_path):
    from ast_robot.config import ExperimentConfig
    from ast_robot.runlog import RunDir

    full = make(mode, steps=16)
    full.fit()
    first = make(mode, steps=16, checkpoint_every=8)
    first.run = RunDir(ExperimentConfig(name="a"), root=tmp_path)
    first.fit(steps=8)  # writes ckpt at step 8
    torch.manual_seed(123)  # disturb the global RNG: resume must restore it
    second = make(mode, steps=16, seed=5)
    assert second.resume(tmp_path / "a") == 8
    second.fit()
    assert torch.equal(params(full), params(second))
    assert full.counters.backward_samples == second.counters.backward_samples
    if mode != "off":
        assert full.gate.threshold == second.gate.threshold


def test_checkpoints_are_written_once_per_step_and_pruned_to_keep_last(tmp_path, monkeypatch):
    from ast_robot.config import ExperimentConfig
    from ast_robot.core import checkpoint as ckpt
    from ast_robot.runlog import RunDir

    saved, real_save = [], ckpt.save_checkpoint
    monkeypatch.setattr(ckpt, "save_checkpoint", lambda run_dir, step, *a, **kw: saved.append(step) or real_save(run_dir, step, *a, **kw))
    trainer = make("off", steps=12, checkpoint_every=4, keep_last=2)
    trainer.run = RunDir(ExperimentConfig(name="k"), root=tmp_path)
    trainer.fit()
    assert saved == [4, 8, 12]  # the final step, a multiple of checkpoint_every, written once
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "k")] == ["ckpt-00000008", "ckpt-00000012"]


def test_grad_accumulation_matches_one_big_batch():
    a, b = make(steps=5), make(steps=5, grad_accum=4)
    a.model[2].p = b.model[2].p = 0.0  # no dropout: same math, different micro-batching
    a.fit()
    b.fit()
    assert torch.allclose(params(a), params(b), atol=1e-5)


def test_bf16_autocast_path_and_fp16_rejected_on_cpu():
    trainer = make("forward_all", steps=10, amp="bf16")
    c = trainer.fit()
    assert c.nonfinite_steps == 0 and torch.isfinite(torch.tensor(c.last_loss))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16.*CUDA"):
            make(amp="fp16")


def test_nonfinite_steps_are_skipped_counted_and_stop(caplog):
    calls = {"n": 0}

    def sometimes_nan(model, batch):
        out = ce_loss(model, batch)
        calls["n"] += 1
        bad = calls["n"] % 3 == 0
        return out._replace(losses=out.losses * (float("nan") if bad else 1.0))

    trainer = make(steps=9, loss_fn=sometimes_nan, max_nonfinite_steps=5)
    before = params(trainer)
    with caplog.at_level(logging.WARNING):
        c = trainer.fit()
    assert c.nonfinite_steps == 3 and "non-finite" in caplog.text
    assert torch.isfinite(params(trainer)).all() and not torch.equal(before, params(trainer))
    with pytest.raises(FloatingPointError, match="max_nonfinite_steps"):
        make(steps=20, loss_fn=sometimes_nan, max_nonfinite_steps=2).fit()


class OomOver(nn.Module):
    """Raises the real torch.OutOfMemoryError for micro-batches larger than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.net = limit, nn.Linear(8, 2)

    def forward(self, x):
        if torch.is_grad_enabled() and x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (simulated for {x.shape[0]} samples)")
        return self.net(x)


def test_out_of_memory_halves_micro_batch_and_keeps_effective_batch(caplog):
    with caplog.at_level(logging.WARNING):
        torch.manual_seed(0)
        oom = make(steps=5, model=OomOver(10))
        oom.fit()
    assert oom.accum == 4 and oom.counters.oom_halvings == 2 and "halving" in caplog.text
    torch.manual_seed(0)
    ref = make(steps=5, model=OomOver(1000), grad_accum=4)
    ref.fit()
    assert torch.allclose(params(oom), params(ref), atol=1e-6)  # same effective batch, same result


def test_callbacks_stop_and_eval_records():
    class StopAt(Callback):
        def _on_step(self) -> bool:
            return self.trainer.step < 7

    def accuracy(model):
        model.eval()
        with torch.no_grad():
            return {"acc": float((model(X).argmax(1) == Y).float().mean())}

    evals = EvalCallback(accuracy, every=3)
    trainer = make(steps=50, callbacks=[StopAt(), evals])
    trainer.fit()
    assert trainer.step == 7
    assert [row["step"] for row in evals.history] == [3, 6, 7]
    assert all(0 <= row["acc"] <= 1 for row in evals.history)


def test_gate_without_significance_is_rejected():
    m = nn.Linear(8, 2)
    cfg = from_dict(TrainConfig, {"type": "vision", "steps": 1, "batch_size": 8})
    with pytest.raises(ValueError, match="significance"):
        Trainer(m, ce_loss, torch.optim.SGD(m.parameters(), 0.1), TensorData(X, Y), cfg, gate=Gate(GateConfig()))


def test_gate_anneal_and_kept_batch_sizing():
    from ast_robot.config import ExperimentConfig
    from ast_robot.core.assemble import build_trainer, draw_batch_size

    cfg = from_dict(ExperimentConfig, {"train": {"type": "vision", "batch_size": 16, "device": "cpu"},
                                       "significance": {"stale_scores": True},
                                       "gate": {"enabled": True, "scoring": "stale_scores", "batch": "kept",
                                                "anneal": 0.5, "target_rate": 0.25}})  # fmt: skip
    assert draw_batch_size(cfg) == 64  # 16 kept of 64 drawn at a 25% rate
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    trainer = build_trainer(cfg, model, ce_loss, TensorData(X, Y), steps=20, run=None, show_progress=False)
    trainer.fit(steps=10)  # epochs 1-2.5: first epoch forced (unseen), then gated
    gated_part = trainer.counters.backward_samples
    assert gated_part < 10 * 64
    trainer.fit()  # the last half is annealed: every drawn sample is trained on
    assert not trainer.gated
    assert trainer.counters.backward_samples - gated_part == 10 * 64


def test_hysteresis_favours_samples_kept_last_time():
    scores = torch.full((20_000,), 0.5)
    gate = Gate(GateConfig(hysteresis=0.1, kp=0.0, ki=0.0, initial_threshold=0.55), seed=0)
    was_kept = torch.arange(20_000) % 2 == 0
    keep, _ = gate(scores, was_kept)
    assert keep[was_kept].float().mean() > keep[~was_kept].float().mean() + 0.2


def test_stale_gate_keeps_both_row_kinds_when_their_losses_are_scored_apart():
    """Two row kinds, one with a 10x loss scale (BC's demo vs scene rows): scored on one scale, the stale gate
    backwards almost only the large-loss kind; with ``loss_groups: 2`` (groups from the loss) both near the rate."""
    kind = torch.arange(len(X)) % 2

    def grouped_loss(model, batch):
        out = ce_loss(model, batch)
        g = kind[batch.indices]
        return out._replace(losses=out.losses * torch.where(g == 1, 10.0, 1.0), groups=g)

    def kept_share(loss_groups: int) -> list[float]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
        cfg = from_dict(TrainConfig, {"type": "vision", "steps": 48, "batch_size": 32})
        sig = SignificanceModel(SignificanceConfig(weights={"loss": 1.0}, stale_scores=True, loss_groups=loss_groups))
        gate = Gate(GateConfig(target_rate=0.4, scoring="stale_scores"), seed=0)
        frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # fixed losses: the ranking alone decides
        trainer = Trainer(model, grouped_loss, frozen, TensorData(X, Y), cfg, significance=sig, gate=gate,
                          show_progress=False)  # fmt: skip
        kept = torch.zeros(2)
        for _ in range(cfg.steps):
            batch = trainer.data.get(trainer.sampler.next())
            keep = trainer._decide(batch)[0]
            trainer._learn_significance(batch.indices, keep, None, score_of(trainer, batch.select(keep)), None)
            if trainer.step >= 8:  # after the first epoch (never-seen rows are all kept)
                kept += torch.bincount(kind[batch.indices][keep], minlength=2)
            trainer.step += 1
        return (kept / kept.sum()).tolist()

    def score_of(trainer, kept_batch):
        from ast_robot.core.trainer import score_inputs

        return score_inputs(kept_batch, grouped_loss(trainer.model, kept_batch)) if kept_batch.size else None

    assert kept_share(1)[0] < 0.15  # the small-loss kind is gated out wholesale
    assert 0.35 < kept_share(2)[0] < 0.65  # scored apart: both kinds are kept
