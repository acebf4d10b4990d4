"""Model cost: multiply-adds (MAdds) of convolutions and fully connected layers, and parameter counts.

Protocol (the convention of the MobileNetV2 / ShuffleNet / pruning and NAS papers of 2018-2020, and of
``ptflops``/``thop`` restricted to the same layers):

* Only ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d`` (any subclass of ``torch.nn.modules.conv._ConvNd``,
  lazy variants included) and ``nn.Linear`` (and its subclasses) are counted. Batch normalisation,
  activations, pooling, element-wise additions, softmax, upsampling and **biases** count zero.
* Convolution: ``MAdds = out.numel() * (in_channels / groups) * prod(kernel_size)``: each output element is a
  dot product over ``in_channels/groups`` input channels and the kernel window. Grouped and depthwise
  convolutions are therefore ``groups`` times cheaper than dense ones. Dilation and stride change only
  ``out.numel()``, padding is counted as if it were data (the usual convention).
* Transposed convolution: every *input* element is scattered into ``out_channels/groups * prod(kernel)``
  outputs, so ``MAdds = in.numel() * (out_channels / groups) * prod(kernel_size)``.
* Linear: ``MAdds = out.numel() * in_features`` (all leading dimensions, batch included).
* Counting is done by forward hooks on one forward pass of the given input, in ``eval()`` mode and under
  ``torch.no_grad()``. A module called several times (weight sharing, recurrent use) is counted at every
  call; a module never called (e.g. an unused auxiliary head) counts zero.
* **The count is for the batch you pass**: ``count_madds(m, (8, 3, 224, 224))`` is 8x the figure for
  ``(1, 3, 224, 224)``. Papers quote per-image numbers: use batch 1.

Reference figures (torchvision, ``weights=None``, input 1x3x224x224): ``resnet18`` 1,814,073,344;
``resnet50`` 4,089,184,256; ``mobilenet_v2`` 300,774,272 (all include the final FC layer).

Not counted, by design (document these in a paper's table if they matter):

* functional calls: ``F.conv2d``, ``F.linear``, ``torch.matmul``/``@``, ``torch.bmm``, ``einsum``; only
  *modules* are hooked. In particular ``nn.MultiheadAttention`` counts **zero**: it calls
  ``F.multi_head_attention_forward`` with its projection weights directly, so neither the in/out
  projections (its ``out_proj`` is an ``nn.Linear`` whose ``forward`` is never called) nor the attention
  matrix products are seen. Transformers need a dedicated counter.
* ``nn.Bilinear``, RNN/LSTM/GRU cells, embedding lookups.
* data-dependent work: a model whose control flow depends on the input values (NMS, early exit) is
  counted for the zero tensor that ``input_size`` builds; pass a real example tensor in that case.

Parameters: ``count_params`` sums ``p.numel()`` over ``model.parameters()`` (shared parameters once,
buffers such as BN running statistics never).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

__all__ = ["count_madds", "madds_breakdown", "count_params", "module_madds"]


def module_madds(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """MAdds of one call of a counted module (conv, transposed conv, linear); 0 for any other module."""
    if isinstance(module, _ConvNd):
        kernel = math.prod(int(k) for k in module.kernel_size)
        groups = int(module.groups)
        if module.transposed:
            x = inputs[0]
            return int(x.numel()) * (int(module.out_channels) // groups) * kernel
        return int(output.numel()) * (int(module.in_channels) // groups) * kernel
    if isinstance(module, nn.Linear):
        return int(output.numel()) * int(module.in_features)
    return 0


def _is_counted(module: nn.Module) -> bool:
    return isinstance(module, (_ConvNd, nn.Linear))


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    device, dtype = torch.device("cpu"), torch.get_default_dtype()
    for p in model.parameters():
        device = p.device
        if p.is_floating_point():
            dtype = p.dtype
            break
    return device, dtype


def _is_shape(obj: Any) -> bool:
    return isinstance(obj, (tuple, list, torch.Size)) and len(obj) > 0 and all(
        isinstance(s, int) and not isinstance(s, bool) for s in obj)


def _make_inputs(model: nn.Module, input_size: Any) -> tuple[Any, ...]:
    """Positional arguments for ``model(*args)``.

    ``input_size`` may be one shape ``(1, 3, 224, 224)``, a tuple/list of shapes (one per positional input),
    one example tensor, or a tuple/list of example tensors. Shapes become zero tensors on the device and
    with the floating dtype of the model's first parameter.
    """
    device, dtype = _model_device_dtype(model)
    if isinstance(input_size, torch.Tensor):
        return (input_size,)
    if _is_shape(input_size):
        return (torch.zeros(tuple(input_size), device=device, dtype=dtype),)
    if isinstance(input_size, (tuple, list)) and len(input_size) > 0:
        args = []
        for item in input_size:
            if isinstance(item, torch.Tensor):
                args.append(item)
            elif _is_shape(item):
                args.append(torch.zeros(tuple(item), device=device, dtype=dtype))
            else:
                raise TypeError(f"cannot build an input from {item!r}: give a shape tuple or a tensor")
        return tuple(args)
    raise TypeError(f"input_size must be a shape, a tensor, or a sequence of them; got {input_size!r}")


def madds_breakdown(model: nn.Module, input_size: Any) -> list[tuple[str, str, int]]:
    """Per-module MAdds: ``[(qualified module name, class name, madds), ...]``.

    One entry per counted module (conv / transposed conv / linear) that ran at least once, in the order of
    its first call; a module called several times has its calls summed. The root module, if it is itself a
    conv or linear layer, is named ``""``. ``sum(m for _, _, m in madds_breakdown(...)) == count_madds(...)``.
    Useful for pruning papers (cost per prunable layer) and for checking a model against a paper's table.
    """
    args = _make_inputs(model, input_size)
    totals: dict = {}
    order: list[str] = []
    types: dict = {}
    handles = []

    def make_hook(name: str):
        def hook(module, inputs, output):
            if name not in totals:
                totals[name] = 0
                order.append(name)
                types[name] = type(module).__name__
            totals[name] += module_madds(module, inputs, output)
        return hook

    modes = [(m, m.training) for m in model.modules()]
    try:
        for name, module in model.named_modules():
            if _is_counted(module):
                handles.append(module.register_forward_hook(make_hook(name)))
        model.eval()
        with torch.no_grad():
            model(*args)
    finally:
        for h in handles:
            h.remove()
        for m, was_training in modes:  # restore each module's own flag (e.g. frozen BN inside a training model)
            m.training = was_training
    return [(name, types[name], int(totals[name])) for name in order]


def count_madds(model: nn.Module, input_size: Any) -> int:
    """Total multiply-adds of conv / transposed-conv / linear modules for one forward pass of ``input_size``.

    ``input_size``: a shape such as ``(1, 3, 224, 224)``, a tuple of shapes (several positional inputs),
    an example tensor, or a tuple of tensors. The count covers the whole batch given (use batch 1 for the
    per-image figures papers report). The model is run in eval mode under ``torch.no_grad()``; every
    module's ``training`` flag is restored afterwards and hooks are removed even if the forward raises.
    """
    return int(sum(m for _, _, m in madds_breakdown(model, input_size)))


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once; buffers excluded). ``trainable_only`` keeps
    parameters with ``requires_grad=True``."""
    return int(sum(p.numel() for p in model.parameters() if (p.requires_grad or not trainable_only)))
