"""bench/device/two_stage_cuda_check.py's comparison on its null case (the same network twice on the CPU: no error)
and on a known fault (one weight changed in the copy: it fails), so a pass on the GPU means something."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench/device/two_stage_cuda_check.py"
spec = importlib.util.spec_from_file_location("two_stage_cuda_check", SCRIPT)
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def test_the_same_network_on_the_cpu_twice_passes_with_no_error():
    row = check.check("default", {}, wrist=True, batch_size=3, device="cpu")
    assert row["passed"] and row["loss_rel_err"] == row["grad_rel_err_worst"] == row["act_abs_err"] == 0.0
    assert row["grads_compared"] > 20 and not row["missing_grads"]


def test_a_changed_weight_in_the_copy_fails():
    torch.manual_seed(0)
    space = check.space(wrist=False)
    reference = check.build_policy(check.PolicyConfig(**check.BASE), space, 4).eval()
    other = check.build_policy(check.PolicyConfig(**check.BASE), space, 4).eval()
    other.load_state_dict(reference.state_dict())
    with torch.no_grad():
        next(p for name, p in other.named_parameters() if "stem" in name).mul_(1.01)
    row = check.compare(reference, other, check.batch_of(space, 3, torch.Generator().manual_seed(1)), space)
    assert not row["passed"] and row["grad_rel_err_worst"] > check.TOLERANCE


def test_an_option_this_checkout_lacks_is_skipped_with_its_reason():
    row = check.check("future", {"no_such_option": 1}, wrist=False, batch_size=2, device="cpu")
    assert "no_such_option" in row["skipped"]


def test_two_correct_kernels_that_round_differently_pass():
    """The CPU's convolutions with and without oneDNN (another summation order, as on CUDA) differ by 2e-2 of the
    softmax-cancelled ``perception.free.bias`` gradient (1e-8 of the largest): rounding, not a fault."""
    torch.manual_seed(0)
    space = check.space(wrist=False)
    net = check.build_policy(check.PolicyConfig(**check.BASE), space, 4).eval()
    batch = check.batch_of(space, 16, torch.Generator().manual_seed(1))
    _, reference = check.loss_and_grads(net, batch)
    reference = {k: g.clone() for k, g in reference.items()}
    net.zero_grad()
    with torch.backends.mkldnn.flags(enabled=False):
        _, other = check.loss_and_grads(net, batch)
    unfloored = max(check.relative(other[k], g) for k, g in reference.items())
    errors = check.gradient_errors(other, reference)
    assert unfloored > check.TOLERANCE  # what the check measured before the floor: a false failure
    assert max(errors.values()) < check.TOLERANCE
