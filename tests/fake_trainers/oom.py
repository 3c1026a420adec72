"""Fake trainer: starts training, then dies of CUDA OOM like sd-scripts (exit 1).

Accepts any argv. stdout: the start summary and "epoch 1/2"; stderr: two "steps:" bar
updates, then the real torch traceback ending in
"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB …". Writes no LoRA.
"""

import sys

from _common import bar, err, out, start_summary

total = start_summary()
out("")
out("epoch 1/2")
err(bar(0, total))
err(bar(1, total, 0.123))
err("\n")
err(
    "Traceback (most recent call last):\n"
    '  File "/opt/sd-scripts/sd3_train_network.py", line 483, in <module>\n'
    "    trainer.train(args)\n"
    '  File "/opt/sd-scripts/train_network.py", line 1405, in train\n'
    "    accelerator.backward(loss)\n"
    '  File "/opt/venv/lib/python3.10/site-packages/torch/autograd/__init__.py", line 347, '
    "in backward\n"
    "    _engine_run_backward(\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
    "capacity of 23.55 GiB of which 1.21 GiB is free. Including non-PyTorch memory, this "
    "process has 22.30 GiB memory in use. Of the allocated memory 20.89 GiB is allocated by "
    "PyTorch, and 1.02 GiB is reserved by PyTorch but unallocated.\n"
)
sys.exit(1)
