"""Mask factories against dense boolean references written as plain loops."""

from __future__ import annotations

import pytest
import torch

from ast_robot.policies import masks
from ast_robot.policies.backends import SparsePlan, build_block_mask, select_blocks


def loop_mask(T: int, pred) -> torch.Tensor:
    return torch.tensor([[bool(pred(q, kv)) for kv in range(T)] for q in range(T)])


def lists_to_table(num: torch.Tensor, idx: torch.Tensor, n_cols: int) -> torch.Tensor:
    """Inverse of `masks.to_kv_lists`: the bool table the first ``num`` indices of each row mark."""
    valid = torch.arange(idx.shape[-1], device=idx.device) < num.unsqueeze(-1)
    table = torch.zeros((*idx.shape[:-1], n_cols + 1), dtype=torch.bool, device=idx.device)
    return table.scatter_(-1, torch.where(valid, idx, n_cols).long(), True)[..., :n_cols]


@pytest.mark.parametrize("T,bs,w", [(16, 4, 0), (19, 4, 1), (33, 8, 2)])
def test_local_window_matches_loop(T, bs, w):
    got = masks.dense_mask(masks.local_window(bs, w), 1, 1, T, T)[0, 0]
    assert torch.equal(got, loop_mask(T, lambda q, kv: abs(q // bs - kv // bs) <= w))


def test_global_causal_token_window_and_length():
    T = 12
    cases = [
        (masks.global_tokens(3), lambda q, kv: q < 3 or kv < 3),
        (masks.causal(), lambda q, kv: kv <= q),
        (masks.token_window(2), lambda q, kv: abs(q - kv) <= 2),
        (masks.key_length(7), lambda q, kv: kv < 7),
    ]
    for mod, pred in cases:
        assert torch.equal(masks.dense_mask(mod, 1, 1, T, T)[0, 0], loop_mask(T, pred))


def test_compose_and_or():
    T, bs = 20, 4
    mod = masks.and_masks(masks.or_masks(masks.local_window(bs, 0), masks.global_tokens(2)), masks.causal())
    ref = loop_mask(T, lambda q, kv: (q // bs == kv // bs or q < 2 or kv < 2) and kv <= q)
    assert torch.equal(masks.dense_mask(mod, 2, 3, T, T), ref.expand(2, 3, T, T))


def test_selected_blocks_per_batch_and_head():
    sel = torch.rand(2, 3, 4, 4) > 0.5
    got = masks.dense_mask(masks.selected_blocks(sel, 5), 2, 3, 20, 20)
    for b in range(2):
        for h in range(3):
            assert torch.equal(got[b, h], loop_mask(20, lambda q, kv, b=b, h=h: sel[b, h, q // 5, kv // 5]))


def test_top_k_table_picks_highest_candidates():
    scores = torch.tensor([[[5.0, 1.0, 4.0, 3.0], [0.0, 9.0, 8.0, 1.0]]])  # (1, nQb=2, nKVb=4)
    exclude = torch.tensor([[True, False, False, False], [False, True, False, False]])
    got = masks.top_k_table(scores, 2, exclude)
    assert got.tolist() == [[[False, False, True, True], [False, False, True, True]]]
    assert masks.top_k_table(scores, 0).sum() == 0
    # fewer candidates than k: never picks an excluded block
    assert masks.top_k_table(scores, 4, torch.ones(2, 4, dtype=torch.bool)).sum() == 0


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T,bs,G", [(32, 8, 0), (37, 8, 3), (40, 8, 9)])
def test_block_tables_match_token_mask(causal, T, bs, G):
    """`any`/`full` per block agree with the token mask: what the FlexAttention BlockMask is built from."""
    torch.manual_seed(T + G)
    nb = -(-T // bs)
    blocks = torch.rand(2, 2, nb, nb) > 0.6
    if causal:
        blocks &= masks.causal_table(nb, nb)[0]
    plan = SparsePlan(blocks, bs, G, causal, T)
    token = masks.dense_mask(plan.mask_mod(), 2, 2, nb * bs, nb * bs)  # padded grid, padding masked
    per_block = token.view(2, 2, nb, bs, nb, bs)
    any_, full = plan.tables()
    assert torch.equal(any_, per_block.any(5).any(3))
    assert torch.equal(full, per_block.all(5).all(3))
    assert torch.equal(plan.dense(), token[..., :T, :T])


@pytest.mark.parametrize("causal", [False, True])
def test_select_blocks_matches_top_k_table(causal):
    torch.manual_seed(5)
    nb, w, k = 9, 1, 3
    window = masks.window_table(nb, nb, w)
    allowed = masks.causal_table(nb, nb)[0] if causal else torch.ones(nb, nb, dtype=torch.bool)
    scores = torch.randn(2, 3, nb, nb)
    got = select_blocks(scores, window & allowed, window | ~allowed, k)
    ref = (masks.top_k_table(scores, k, exclude=window | ~allowed) | window) & allowed
    assert torch.equal(got, ref)  # causal rows 0-3 have fewer than k candidates


@pytest.mark.parametrize("G,causal,T", [(0, False, 64), (3, False, 64), (2, True, 61)])
def test_block_mask_lists_are_the_tables_and_their_transposes(G, causal, T):
    """Our BlockMask's kv lists reproduce the block tables; its q lists (what backward walks) are the
    transposes, as ``BlockMask.from_kv_blocks`` would compute them."""
    from torch.nn.attention.flex_attention import _transpose_ordered

    torch.manual_seed(G + T)
    bs, nb = 8, 8
    blocks = (torch.rand(2, 2, nb, nb) > 0.6) | torch.eye(nb, dtype=torch.bool)
    if causal:
        blocks &= masks.causal_table(nb, nb)[0]
    plan = SparsePlan(blocks, bs, G, causal, T)
    bm = build_block_mask(plan, nb * bs)
    any_, full = plan.tables()
    partial = any_ & ~full
    dense = lambda num, idx: lists_to_table(num, idx, nb)  # noqa: E731
    assert torch.equal(dense(bm.kv_num_blocks, bm.kv_indices), partial)
    assert torch.equal(dense(bm.full_kv_num_blocks, bm.full_kv_indices), full)
    for kv, q in (((bm.kv_num_blocks, bm.kv_indices), (bm.q_num_blocks, bm.q_indices)),
                  ((bm.full_kv_num_blocks, bm.full_kv_indices), (bm.full_q_num_blocks, bm.full_q_indices))):  # fmt: skip
        ref_num, ref_idx = _transpose_ordered(*kv)
        assert torch.equal(q[0], ref_num)
        assert torch.equal(dense(*q), dense(ref_num, ref_idx))


def test_kv_lists_layout():
    table = torch.tensor([[[[False, True, False, True], [True, False, False, False]]]])
    num, idx = masks.to_kv_lists(table)
    assert num.tolist() == [[[2, 1]]]
    assert idx[0, 0, 0, :2].tolist() == [1, 3] and idx[0, 0, 1, 0].item() == 0
    assert num.dtype == idx.dtype == torch.int32


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: masks.local_window(4, -1), "window_blocks must be an integer >= 0, got -1"),
        (lambda: masks.local_window(0, 1), "block_size must be an integer >= 1"),
        (lambda: masks.global_tokens(-2), "n_global"),
        (
            lambda: masks.top_k_table(torch.zeros(2, 3), 4),
            r"top_k \(4\) must not exceed the number of key blocks \(3\)",
        ),
        (lambda: masks.selected_blocks(torch.zeros(2, 2), 4), "selection must be a bool tensor"),
        (lambda: masks.and_masks(), "at least one"),
    ],
)
def test_invalid_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("T", [130, 1000, 2000, 2049])
@pytest.mark.parametrize("G,causal", [(2, True), (0, True), (2, False)])
def test_layer_block_lists_in_range_and_match_dense_reference(T, G, causal):
    """The GPU crash of issue 22 (H100): causal, 2 global tokens, 128-token blocks, a partial last block
    (2000 tokens). The layer's own selection at those sizes: every FlexAttention list index is in range
    and the lists are exactly the block tables, which cover exactly the token mask of the dense reference;
    eager FlexAttention over that BlockMask then matches the dense reference."""
    import warnings

    from torch.nn.attention.flex_attention import flex_attention

    from ast_robot.policies.attention import SparseAttentionCore
    from ast_robot.policies.backends import dense_attention

    torch.manual_seed(T + G)
    bs, nb = 128, -(-T // 128)
    core = SparseAttentionCore(8, bs, 1, min(2, nb), n_global=G, causal=causal, backend="dense")
    q, k, v = (torch.randn(1, 2, T, 8) for _ in range(3))
    with torch.no_grad():
        plan, _ = core.plan(q, k, v)
    lists = plan.lists
    for num, idx in zip(lists[0::2], lists[1::2]):  # (num, idx) pairs: counts in [0, nb], indices in [0, nb)
        assert num.min() >= 0 and num.max() <= nb and idx.min() >= 0 and idx.max() < nb
    any_, full = plan.tables()
    padded = nb * bs
    token = masks.dense_mask(plan.mask_mod(), 1, 2, padded, padded).view(1, 2, nb, bs, nb, bs)
    assert torch.equal(any_, token.any(5).any(3)) and torch.equal(full, token.all(5).all(3))
    assert torch.equal(lists_to_table(*lists[0:2], nb), any_ & ~full)
    assert torch.equal(lists_to_table(*lists[2:4], nb), full)
    assert torch.equal(lists_to_table(*lists[4:6], nb), (any_ & ~full).transpose(-1, -2))
    assert torch.equal(lists_to_table(*lists[6:8], nb), full.transpose(-1, -2))
    pad = padded - T
    qp, kp, vp = (torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # eager FlexAttention on purpose
        # compiled=False: eager FlexAttention evaluates mask_mod on every pair (the compiled kernel reads
        # the lists and, without global tokens, gets a reduced partial-block mask)
        out = flex_attention(qp, kp, vp, block_mask=build_block_mask(plan, padded, compiled=False))[:, :, :T]
    torch.testing.assert_close(out, dense_attention(q, k, v, plan), atol=1e-5, rtol=1e-5)
