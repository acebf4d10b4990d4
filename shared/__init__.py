"""The thin layer every paper package may import.

Logging (`shared.log`), distributed training (`shared.dist`), checkpoints (`shared.checkpoint`),
configuration (`shared.config`), device and precision (`shared.device`) and the evaluation
protocols (`shared.metrics`). It holds no model, no dataset and no training loop.
"""
