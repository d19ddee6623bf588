"""Significance components rank constructed cases correctly; the learned predictor tracks gradient norms."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.func import functional_call, grad, vmap

from ast_robot.config.gate import SignificanceConfig
from ast_robot.core.significance import ScoreInputs, SignificanceModel


def _model(**weights: float) -> SignificanceModel:
    return SignificanceModel(SignificanceConfig(weights=weights))


def test_loss_ranks_misclassified_sample_higher():
    torch.manual_seed(0)
    logits = torch.randn(32, 10) * 0.1
    targets = torch.randint(0, 10, (32,))
    logits[torch.arange(32), targets] += 5.0  # all correct and confident...
    logits[3, targets[3]] -= 10.0  # ...except sample 3
    losses = nn.functional.cross_entropy(logits, targets, reduction="none")
    model = _model(loss=1.0)
    model.update(ScoreInputs(torch.arange(32), losses))
    scores = model.score(ScoreInputs(torch.arange(32), losses))
    assert scores.argmax() == 3 and ((scores >= 0) & (scores <= 1)).all()


def test_uncertainty_ranks_uniform_prediction_higher():
    logits = torch.tensor([[8.0, 0.0, 0.0], [0.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    scores = _model(uncertainty=1.0).score(ScoreInputs(torch.arange(3), logits=logits))
    assert scores.argmax() == 1 and scores[1] == pytest.approx(1.0) and scores[0] < scores[2]
    var = torch.tensor([0.01, 1.0, 0.1])
    assert _model(uncertainty=1.0).score(ScoreInputs(torch.arange(3), variance=var)).argmax() == 1


def test_novelty_ranks_outlier_higher():
    torch.manual_seed(0)
    model = SignificanceModel(SignificanceConfig(weights={"novelty": 1.0}, novelty_prototypes=8))
    for _ in range(20):  # memory learns the inlier cloud
        emb = torch.randn(64, 4)
        model.update(ScoreInputs(torch.arange(64), embeddings=emb))
    batch = torch.randn(16, 4)
    batch[5] = torch.tensor([12.0, -12.0, 12.0, 0.0])
    scores = model.score(ScoreInputs(torch.arange(16), embeddings=batch))
    assert scores.argmax() == 5 and scores[5] > 0.9


def test_physical_is_neutral_without_real_data_and_used_with_it():
    losses = torch.tensor([0.1, 2.0, 0.5])
    base = _model(loss=1.0).score(ScoreInputs(torch.arange(3), losses))
    both = _model(loss=1.0, physical=1.0)
    assert torch.allclose(both.score(ScoreInputs(torch.arange(3), losses)), base)
    weighted = both.score(ScoreInputs(torch.arange(3), losses, physical=torch.tensor([1.0, 0.0, 1.0])))
    assert weighted.argmax() != base.argmax()
    with pytest.raises(ValueError, match="physical"):
        both.score(ScoreInputs(torch.arange(3), losses, physical=torch.tensor([2.0, 0.0, 1.0])))


def test_unknown_component_and_missing_input_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown significance component 'los'.*known: \['learning_value'"):
        _model(los=1.0)
    with pytest.raises(ValueError, match="novelty.*embeddings"):
        _model(novelty=1.0).score(ScoreInputs(torch.arange(2), torch.rand(2)))
    with pytest.raises(ValueError, match="weights.loss"):
        _model(loss=-1.0)


def test_stale_scores_remember_by_index_and_round_trip():
    model = SignificanceModel(SignificanceConfig(weights={"loss": 1.0}, stale_scores=True))
    fresh = model.observe(ScoreInputs(torch.tensor([4, 7]), torch.tensor([0.1, 3.0])))
    scores, kept = model.stale.lookup(torch.tensor([7, 4, 100]))
    assert torch.equal(scores, torch.stack([fresh[1], fresh[0], torch.tensor(1.0)]))  # unseen -> 1
    assert not kept.any()
    model.stale.mark_kept(torch.tensor([7]), torch.tensor([True]))
    copy = SignificanceModel(model.cfg)
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy.stale.lookup(torch.tensor([7, 4]))[0], scores[:2])
    assert copy.stale.lookup(torch.tensor([7]))[1].item()


def _per_sample_grad_norms(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) norm of each sample's gradient over all parameters (torch.func, no approximation)."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss_one(p, xi, yi):
        out = functional_call(net, p, (xi.unsqueeze(0),))
        return nn.functional.cross_entropy(out, yi.unsqueeze(0))

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))


def test_learning_value_predictor_correlates_with_gradient_norms():
    torch.manual_seed(0)
    centers = torch.randn(5, 10) * 1.5
    net = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 5))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    model = _model(learning_value=1.0)

    def batch(n=64):
        y = torch.randint(0, 5, (n,))
        return centers[y] + torch.randn(n, 10), y

    for _ in range(60):  # train the test model and, online, the predictor on measured grad norms
        x, y = batch()
        logits = net(x)
        losses = nn.functional.cross_entropy(logits, y, reduction="none")
        model.update(ScoreInputs(torch.arange(64), losses.detach(), logits.detach()), _per_sample_grad_norms(net, x, y))
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
    x, y = batch(256)
    with torch.no_grad():
        logits = net(x)
        losses = nn.functional.cross_entropy(logits, y, reduction="none")
    predicted = model.components["learning_value"].predict(ScoreInputs(torch.arange(256), losses, logits))
    rho = spearmanr(predicted.numpy(), _per_sample_grad_norms(net, x, y).numpy()).statistic
    assert rho >= 0.5, rho


def test_loss_groups_rank_each_row_kind_within_itself():
    """BC's scene rows (perception loss only) sit on another loss scale than demo rows: one scale ranks every
    demo row above every scene row; ``loss_groups: 2`` z-scores each kind apart, so each is ranked in its kind."""
    torch.manual_seed(0)
    groups = torch.arange(64) % 2  # odd rows: group 1, losses 20x larger
    losses = (0.5 + torch.rand(64)) * torch.where(groups == 1, 20.0, 1.0)
    x = ScoreInputs(torch.arange(64), losses, groups=groups)
    one = _model(loss=1.0)
    one.update(x)
    assert one.score(x)[groups == 1].min() > one.score(x)[groups == 0].max()  # one scale: a wholesale split
    apart = SignificanceModel(SignificanceConfig(weights={"loss": 1.0}, loss_groups=2))
    apart.update(x)
    scores = apart.score(x)
    for g in (0, 1):  # each kind centred on 0.5 and ranked by its own losses
        assert abs(float(scores[groups == g].mean()) - 0.5) < 0.1
        assert spearmanr(scores[groups == g], losses[groups == g]).statistic > 0.99
    ungrouped = ScoreInputs(torch.arange(64), losses)  # no groups given: the first statistics score every row
    assert torch.allclose(apart.score(ungrouped), apart.components["loss"].stats.normalize(torch.log1p(losses)))
    with pytest.raises(ValueError, match="loss_groups 2 allows 0..1"):
        apart.score(ScoreInputs(torch.arange(2), torch.rand(2), groups=torch.tensor([0, 2])))
