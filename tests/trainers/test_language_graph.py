"""train.cuda_graphs: the byte LM's training forward/backward replayed from CUDA graphs (issue 22).

On CPU: the option is refused in one line, and the graphed loss serves eagerly what it cannot capture
(the same numbers as lm_loss). With CUDA: graphed and eager micro-batches give the same losses and
accumulated gradients through the trainer's own accumulation (unequal weights, set_to_none between
steps), and a backward of a stale forward raises."""

from __future__ import annotations

import copy

import pytest
import torch

from ast_robot.config import ExperimentConfig, from_dict
from ast_robot.core.data import Batch
from ast_robot.trainers.language import ByteLM, lm_loss, training_loss
from ast_robot.trainers.language_graph import GraphedLoss

torch.set_num_threads(1)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def _cfg(tmp_path, **train):
    base = {"type": "language", "steps": 1, "batch_size": 4, "context": 32, "device": "cpu", "cuda_graphs": True}
    return from_dict(ExperimentConfig, {"name": "lm", "run_root": str(tmp_path), "train": {**base, **train}})


def test_cuda_graphs_refused_off_cuda_in_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"train.cuda_graphs: true needs train.device on CUDA \(got cpu\)") as err:
        training_loss(_cfg(tmp_path))
    assert "\n" not in str(err.value)
    assert training_loss(_cfg(tmp_path, cuda_graphs=False)) is lm_loss


def test_graphed_loss_serves_cpu_and_eval_eagerly():
    torch.manual_seed(0)
    model = ByteLM(context=32, d_model=32, n_layers=1, n_heads=4, block_size=16)
    x = torch.randint(0, 256, (2, 33))
    batch = Batch(x[:, :-1], x[:, 1:], torch.arange(2))
    graphed = GraphedLoss(lm_loss)
    out, ref = graphed(model, batch), lm_loss(model, batch)
    assert torch.equal(out.losses, ref.losses) and out.losses.requires_grad
    assert not graphed._graphs  # nothing captured off CUDA


def _accumulate(model, fn, batch, weights):
    model.zero_grad(set_to_none=True)
    losses = []
    for i, w in enumerate(weights):
        out = fn(model, Batch(batch.inputs[i : i + 1], batch.targets[i : i + 1], batch.indices[i : i + 1]))
        ((w * out.losses.float()).sum() / len(weights)).backward()
        losses.append(out.losses.detach())
    return torch.cat(losses), [p.grad.float().clone() for p in model.parameters() if p.grad is not None]


@cuda
@pytest.mark.parametrize("backend", ["full", "flex"])
def test_graphed_equals_eager_on_cuda(backend):
    torch.manual_seed(0)
    model = ByteLM(context=256, d_model=64, n_layers=2, n_heads=4, block_size=32, window_blocks=1, top_k_blocks=2)
    for block in model.encoder.blocks:
        block.attn.core.backend = backend
    eager = model.cuda()
    graphed_model, graphed = copy.deepcopy(eager), GraphedLoss(lm_loss)
    for step in range(3):  # set_to_none between steps: the graph's buffers are zeroed and reinstalled
        x = torch.randint(0, 256, (3, 257), device="cuda")
        batch = Batch(x[:, :-1], x[:, 1:], torch.arange(3))
        ref_losses, ref_grads = _accumulate(eager, lm_loss, batch, (1.0, 0.5, 2.0))
        losses, grads = _accumulate(graphed_model, graphed, batch, (1.0, 0.5, 2.0))
        assert torch.allclose(losses, ref_losses, atol=1e-5), step
        assert len(grads) == len(ref_grads) > 0
        assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(grads, ref_grads)), step
    assert len(graphed._graphs) == 1  # one capture, replayed


@cuda
def test_backward_of_a_stale_forward_raises():
    model = ByteLM(context=64, d_model=32, n_layers=1, n_heads=4, block_size=16).cuda()
    x = torch.randint(0, 256, (1, 65), device="cuda")
    batch = Batch(x[:, :-1], x[:, 1:], torch.arange(1))
    graphed = GraphedLoss(lm_loss)
    first = graphed(model, batch).losses
    graphed(model, batch)  # overwrites the first forward's activations
    with pytest.raises(RuntimeError, match="backward of an older forward"):
        first.sum().backward()
