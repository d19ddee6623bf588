"""FlexAttention on CPU against the dense reference: compiled (forward only: FlexAttention has no CPU
backward; the GPU gradient check is recorded by bench/attention.py). Compiling costs ~30 s per shape, so
one module-scoped fixture compiles once and every check reuses that shape."""

from __future__ import annotations

import pytest
import torch

from ast_robot.policies.attention import SparseAttentionCore

SHAPE = (1, 2, 100, 16)  # B, H, T (not a whole number of 16-token blocks), D


@pytest.fixture(scope="module")
def core():
    torch.manual_seed(0)
    # Compile under the thread count the tests run with (conftest): dynamo guards on it, and a changed
    # count recompiles (a trap for deployments that call torch.set_num_threads after warm-up).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    core = SparseAttentionCore(16, block_size=16, window_blocks=1, top_k_blocks=2, n_global=3, backend="flex")
    with torch.no_grad():
        core(*(torch.randn(SHAPE) for _ in range(3)))  # compiles
    yield core
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_flex_matches_dense_without_recompiling(core):
    for seed in range(3):  # new inputs -> new top-k selections -> new block masks, same compiled kernel
        torch.manual_seed(seed + 1)
        q, k, v = (torch.randn(SHAPE) for _ in range(3))
        with torch.no_grad(), torch._dynamo.config.patch(error_on_recompile=True):
            flex = core(q, k, v, backend="flex")
        assert core.last_backend == "flex"
        with torch.no_grad():
            dense = core(q, k, v, backend="dense")
        torch.testing.assert_close(flex, dense, atol=1e-5, rtol=1e-5)
        assert 0.1 < core.plan(q, k, v)[0].block_sparsity() < 0.9  # a mask that actually skips blocks


@pytest.mark.parametrize("causal", [False, True])
def test_block_mask_gives_the_plans_pattern_outside_the_compiled_kernel(causal):
    """Whole blocks only (no global tokens, T a multiple of the block size): eager FlexAttention reads
    the BlockMask's mask_mod, which must be the plan's mask (a no-op mask meant full attention). The
    compiled path keeps a no-op on whole blocks (faster); its kernel reads only the block lists."""
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    from ast_robot.policies.backends import build_block_mask, dense_attention

    torch.manual_seed(0)
    core = SparseAttentionCore(16, block_size=16, window_blocks=0, top_k_blocks=1, causal=causal, backend="dense")
    q, k, v = (torch.randn(1, 2, 64, 16) for _ in range(3))
    plan, _ = core.plan(q, k, v)
    assert plan.block_sparsity() > 0.4  # the pattern skips blocks: full attention would differ
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "called without torch.compile()": eager on purpose
        flex = flex_attention(q, k, v, block_mask=build_block_mask(plan, 64, compiled=False))
    torch.testing.assert_close(flex, dense_attention(q, k, v, plan), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("T", "causal"), [(128, True), (100, True), (100, False)])
def test_partial_block_mask_equals_the_plans_mask_inside_partial_blocks(T, causal):
    """Without global tokens the compiled kernel checks only causality and the key length inside a
    partial block (no per-pair lookup of the block table): on every pair of every partial block that
    reduced mask must equal the plan's whole mask (outside partial blocks the kernel never reads it)."""
    from ast_robot.policies import masks

    torch.manual_seed(0)
    bs = 16
    core = SparseAttentionCore(16, block_size=bs, window_blocks=1, top_k_blocks=2, causal=causal, backend="dense")
    q, k, v = (torch.randn(2, 2, T, 16) for _ in range(3))
    plan, _ = core.plan(q, k, v)
    nb = -(-T // bs)
    any_, full = plan.tables()
    partial = (any_ & ~full).repeat_interleave(bs, -2).repeat_interleave(bs, -1)  # (B, H, padded, padded)
    assert partial.any()  # the case has partial blocks
    whole = masks.dense_mask(plan.mask_mod(), 2, 2, nb * bs, nb * bs)
    reduced = masks.dense_mask(plan.partial_block_mask_mod(), 2, 2, nb * bs, nb * bs)
    assert torch.equal(whole[partial], reduced[partial])
    assert not torch.equal(whole, reduced.expand_as(whole))  # the reduced mask is not the whole mask elsewhere


def test_partial_block_mask_with_global_tokens_is_the_whole_mask():
    """Global rows and columns make unchosen blocks partial: there the table lookup is needed."""
    from ast_robot.policies import masks

    core = SparseAttentionCore(16, block_size=16, window_blocks=1, top_k_blocks=1, n_global=2, causal=True,
                               backend="dense")  # fmt: skip
    q, k, v = (torch.randn(1, 2, 96, 16) for _ in range(3))
    plan, _ = core.plan(q, k, v)
    whole = masks.dense_mask(plan.mask_mod(), 1, 2, 96, 96)
    assert torch.equal(masks.dense_mask(plan.partial_block_mask_mod(), 1, 2, 96, 96), whole)

