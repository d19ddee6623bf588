"""One torch thread per test process: the tests use tiny models and share 2 cores with xdist workers."""

import torch

torch.set_num_threads(1)
