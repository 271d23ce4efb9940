"""Output-preserving rewrites that let MCT 2.6 quantize models it otherwise rejects."""
from __future__ import annotations

import copy
from typing import Any


def _is_static_same_padding_conv(module: Any) -> bool:
    """A Conv2d subclass that pads in ``forward`` (EfficientNet's ``Conv2dStaticSamePadding``)."""
    import torch.nn as nn

    return isinstance(module, nn.Conv2d) and type(module) is not nn.Conv2d and hasattr(module, "static_padding")


def _plain_conv(module: Any) -> Any:
    """``ZeroPad2d`` (or identity) followed by a plain ``nn.Conv2d`` carrying the same weights."""
    import torch.nn as nn

    conv = nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, stride=tuple(module.stride),
                     padding=module.padding, dilation=module.dilation, groups=module.groups,
                     bias=module.bias is not None, padding_mode=module.padding_mode)
    conv.load_state_dict(module.state_dict())
    pad = module.static_padding
    if isinstance(pad, nn.ZeroPad2d):
        return nn.Sequential(nn.ZeroPad2d(pad.padding), conv)
    return conv


def make_mct_compatible(model: Any) -> tuple[Any, int]:
    """A copy of ``model`` with every static-same-padding convolution replaced by zero padding plus a
    plain ``nn.Conv2d`` (same weights, identical outputs), and how many were replaced.

    MCT 2.6.1 fails on EfficientNet-Lite0 as shipped (``KeyError: 'groups'`` while folding batch
    norm into ``Conv2dStaticSamePadding``); the rewritten model quantizes.
    """
    rewritten = copy.deepcopy(model)
    count = 0
    for parent in list(rewritten.modules()):
        for name, child in list(parent.named_children()):
            if _is_static_same_padding_conv(child):
                setattr(parent, name, _plain_conv(child))
                count += 1
    return rewritten.eval() if not model.training else rewritten, count
