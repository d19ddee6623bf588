"""SparseAttention: the dense reference against plain softmax attention, the learned scorer, validation."""

from __future__ import annotations

import math

import pytest
import torch

from ast_robot.policies.attention import SparseAttention, SparseAttentionCore, choose_backend
from ast_robot.policies.backends import SparsePlan, dense_attention


def naive_attention(q, k, v, mask):
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_dense_backend_matches_naive_softmax_outputs_and_grads(causal):
    torch.manual_seed(0)
    B, H, T, D, bs = 2, 3, 21, 8, 4
    nb = -(-T // bs)
    blocks = (torch.rand(B, H, nb, nb) > 0.5) | torch.eye(nb, dtype=torch.bool)
    if causal:
        blocks &= torch.ones(nb, nb, dtype=torch.bool).tril()
    plan = SparsePlan(blocks, bs, 2, causal, T)
    q, k, v = (torch.randn(B, H, T, D, dtype=torch.float64, requires_grad=True) for _ in range(3))
    ours, ref = dense_attention(q, k, v, plan), naive_attention(q, k, v, plan.dense())
    torch.testing.assert_close(ours, ref)
    g_ours = torch.autograd.grad(ours.square().sum(), (q, k, v))
    g_ref = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_plan_selects_window_plus_top_k_blocks():
    torch.manual_seed(1)
    core = SparseAttentionCore(8, block_size=4, window_blocks=1, top_k_blocks=2, n_global=0, backend="dense")
    q, k, v = (torch.randn(2, 2, 40, 8) for _ in range(3))  # 10 blocks
    plan, (qb, kp, vp) = core.plan(q, k, v)
    per_row = plan.blocks.sum(-1)  # window of 3 (2 at the ends) + 2 chosen
    assert per_row[..., 1:-1].eq(5).all() and per_row[..., [0, -1]].eq(4).all()
    assert qb.shape == kp.shape == vp.shape == (2, 2, 10, 8)  # one pooled query, key, value per block
    assert plan.block_sparsity() == pytest.approx(1 - per_row.sum().item() / (2 * 2 * 100))


def test_scorer_receives_gradient():
    torch.manual_seed(2)
    layer = SparseAttention(16, 2, block_size=4, window_blocks=0, top_k_blocks=1, backend="dense")
    layer(torch.randn(3, 24, 16)).square().mean().backward()
    for p in (
        layer.core.scorer.k_compress.weight,
        layer.core.scorer.v_compress.weight,
        layer.core.gate.weight,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0 and torch.isfinite(p.grad).all()


def test_scorer_learns_to_select_the_informative_block():
    """The output must copy the mean value of one marked block; training only through the loss makes the
    top-1 block selection find it (chance is 1/8)."""
    torch.manual_seed(0)
    D, bs, nb = 8, 4, 8
    core = SparseAttentionCore(D, block_size=bs, window_blocks=0, top_k_blocks=1, n_global=0, backend="dense")

    def batch(B):
        k, v = torch.randn(B, 1, nb * bs, D), torch.randn(B, 1, nb * bs, D)
        signal = torch.randint(0, nb, (B,))
        rows = torch.arange(B)
        k.view(B, nb, bs, D)[rows, signal, :, 0] += 3.0  # marks the informative block's keys
        q = torch.randn(B, 1, nb * bs, D) * 0.1 + 1.0
        target = v.view(B, nb, bs, D)[rows, signal].mean(1).view(B, 1, 1, D).expand_as(q)
        return q, k, v, signal, target

    def hit_rate():
        with torch.no_grad():
            q, k, v, signal, _ = batch(256)
            return core.plan(q, k, v)[0].blocks[torch.arange(256), 0, :, signal].float().mean().item()

    before = hit_rate()
    opt = torch.optim.Adam(core.parameters(), lr=1e-2)
    for _ in range(80):
        q, k, v, _, target = batch(16)
        loss = (core(q, k, v) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before < 0.4 and hit_rate() > 0.9


def test_auto_dispatch():
    assert choose_backend("auto", 100, 2048) == "full"
    assert choose_backend("auto", 4096, 2048) == "flex"
    assert choose_backend("auto", 4096, 2048, flex_ok=False) == "dense"  # CPU training
    assert choose_backend("dense", 10**6, 2048) == "dense"
    layer = SparseAttention(16, 2, block_size=4, backend="auto", crossover=64)
    layer(torch.randn(1, 20, 16))
    assert layer.core.last_backend == "full"
    layer(torch.randn(1, 64, 16))  # at the crossover: sparse (the dense reference, since CPU + grad)
    assert layer.core.last_backend == "dense"


def test_auto_below_crossover_runs_nothing_but_sdpa(monkeypatch):
    layer = SparseAttention(16, 2, block_size=4, backend="auto", crossover=64)
    monkeypatch.setattr(layer.core, "plan", lambda *a, **k: pytest.fail("auto planned a short sequence"))
    layer(torch.randn(1, 20, 16)).sum().backward()
    assert layer.core.last_backend == "full"
    assert all(p.grad is None for p in layer.core.parameters())  # scorer and gate untouched


def test_rows_guard_is_skipped_only_without_partial_blocks():
    from ast_robot.policies.backends import flex_kernel_options

    cpu = torch.device("cpu")
    assert flex_kernel_options(cpu, True)["ROWS_GUARANTEED_SAFE"] is True
    assert flex_kernel_options(cpu, False)["ROWS_GUARANTEED_SAFE"] is False  # NaN on an H200 otherwise


def test_full_backend_is_plain_attention_without_scorer():
    torch.manual_seed(4)
    core = SparseAttentionCore(8, backend="full", causal=True)
    assert core.scorer is None and not list(core.parameters())
    q, k, v = (torch.randn(2, 2, 30, 8) for _ in range(3))
    causal = torch.ones(30, 30, dtype=torch.bool).tril()
    torch.testing.assert_close(core(q, k, v), naive_attention(q, k, v, causal))
    with pytest.raises(ValueError, match="built with backend 'full'"):
        core(q, k, v, backend="dense")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shapes_and_dtypes(dtype):
    layer = SparseAttention(32, 4, block_size=8, window_blocks=1, top_k_blocks=1, n_global=2, backend="dense")
    layer = layer.to(dtype)
    out = layer(torch.randn(2, 45, 32, dtype=dtype))
    assert out.shape == (2, 45, 32) and out.dtype == dtype and torch.isfinite(out).all()


@pytest.mark.parametrize("backend", ["dense", "full"])
def test_causal_output_ignores_the_future(backend):
    torch.manual_seed(3)
    layer = SparseAttention(16, 2, block_size=4, window_blocks=1, top_k_blocks=1, n_global=1, causal=True,
                            backend=backend)  # fmt: skip
    x = torch.randn(1, 32, 16)
    y = x.clone()
    y[:, 20:] = torch.randn(1, 12, 16)
    torch.testing.assert_close(layer(x)[:, :20], layer(y)[:, :20])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"window_blocks": -1}, "window_blocks must be an integer >= 0, got -1"),
        ({"block_size": 0}, "block_size must be an integer >= 1"),
        (
            {"backend": "sparse"},
            r"attention backend must be one of \['dense', 'flex', 'flash', 'full', 'auto'\], got 'sparse'",
        ),
        ({"backend": "flash", "top_k_blocks": 2}, "flash' supports only a plain window"),
    ],
)
def test_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SparseAttention(16, 2, **kwargs)


def test_head_dim_and_top_k_errors():
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by n_heads \(4\)"):
        SparseAttention(30, 4)
    layer = SparseAttention(16, 2, block_size=8, top_k_blocks=3, backend="dense")
    with pytest.raises(ValueError, match=r"top_k_blocks \(3\) exceeds the number of key blocks \(2\)"):
        layer(torch.randn(1, 16, 16))


def test_flash_backend_needs_flash_attn():
    pytest.importorskip("torch")
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        layer = SparseAttention(16, 2, block_size=4, top_k_blocks=0, n_global=0, backend="flash")
        with pytest.raises(ImportError, match=r'pip install "ast-robot\[flash\]"'):
            layer(torch.randn(1, 16, 16))
    else:  # pragma: no cover - only where flash-attn is installed (GPU)
        pytest.skip("flash-attn installed: checked by bench/attention.py on the GPU")


@pytest.mark.parametrize("causal", [False, True])
def test_a_flash_layer_plans_flash_attns_token_window_for_every_backend(causal):
    """flash-attn's window is token-level (radius window_blocks * block_size), not whole blocks: a layer
    built for `flash` plans that window, so its `dense` reference computes the pattern flash-attn does."""
    from ast_robot.policies.attention import SparseAttentionCore

    T, bs, w = 16, 4, 1
    core = SparseAttentionCore(8, block_size=bs, window_blocks=w, top_k_blocks=0, causal=causal, backend="flash")
    q = torch.randn(1, 1, T, 8)
    mask = core.plan(q, q, q)[0].dense()[0, 0]  # (T, T)
    idx = torch.arange(T)
    token_window = (idx.view(-1, 1) - idx.view(1, -1)).abs() <= w * bs  # flash_attn window_size=(4, 4)
    expected = token_window & (idx.view(-1, 1) >= idx.view(1, -1)) if causal else token_window
    assert torch.equal(mask, expected)
    blocks = SparseAttentionCore(8, block_size=bs, window_blocks=w, top_k_blocks=0, causal=causal, backend="dense")
    assert not torch.equal(blocks.plan(q, q, q)[0].dense()[0, 0], mask)  # block windows: another pattern


def test_flash_override_on_a_block_window_layer_is_refused():
    layer = SparseAttention(16, 2, block_size=4, top_k_blocks=0, backend="dense")
    with pytest.raises(ValueError, match="backend 'flash' .* on a layer built for block windows"):
        layer(torch.randn(1, 16, 16), backend="flash")


def test_crossover_from_the_device_table():
    """`auto` without a fixed crossover uses the measured entries of its device (DEFAULT when unknown):
    a layer runs sparse from the first length where its kept fraction falls to an entry's max_kept."""
    from ast_robot.policies import crossover

    assert crossover.entries_for(torch.device("cpu"), torch.float32) == crossover.DEFAULT
    assert crossover._entries("NVIDIA H200 NVL", "bfloat16") == crossover.TABLE[("NVIDIA H200", "bfloat16")]
    # 3 kept blocks of 128 tokens: 0.25 needs >= 12 blocks (1409 tokens), so the entry's 16k decides
    assert crossover.crossover_tokens(((16384, 0.25),), 3, 128) == 16384
    assert crossover.crossover_tokens(((1024, 0.25),), 3, 128) == 11 * 128 + 1  # 12 blocks: 3/12 = 0.25
    assert crossover.crossover_tokens((), 3, 128) > 2**40  # no measured win: never sparse
    layer = SparseAttentionCore(8, block_size=128, window_blocks=1, top_k_blocks=0, backend="auto")
    assert layer.crossover_for(torch.zeros(1, 1, 4, 8)) == 16384
    fixed = SparseAttentionCore(8, block_size=128, window_blocks=1, top_k_blocks=0, backend="auto", crossover=64)
    assert fixed.crossover_for(torch.zeros(1, 1, 4, 8)) == 64


def test_auto_table_is_derived_from_measured_wins_only():
    """bench/attention_gpu.derive_table: an entry needs a >= 5% win forward and forward+backward at its
    length and every longer one; a loss anywhere above resets it; no win gives no entry (never sparse)."""
    from bench.attention_gpu import derive_table

    def rows(flex_ms):  # (tokens, flex fwd, flex fwd_bwd) against SDPA at 1.0 / 1.0, 90% sparse
        out = []
        for T, fwd, fb in flex_ms:
            out += [{"method": "dense_sdpa", "tokens": T, "target_sparsity": 0.9, "fwd_ms": 1.0, "fwd_bwd_ms": 1.0},
                    {"method": "flex", "tokens": T, "target_sparsity": 0.9, "block_sparsity": 0.9, "fwd_ms": fwd,
                     "fwd_bwd_ms": fb}]  # fmt: skip
        return out

    assert derive_table(rows([(2048, 2.0, 2.0), (4096, 0.9, 0.9), (8192, 0.5, 0.5)])) == [(4096, 0.1)]
    assert derive_table(rows([(2048, 0.9, 0.9), (4096, 0.97, 0.5), (8192, 0.5, 0.5)])) == [(8192, 0.1)]
    assert derive_table(rows([(2048, 1.0, 1.0), (4096, 1.0, 1.0)])) == []  # the null case: SDPA everywhere
