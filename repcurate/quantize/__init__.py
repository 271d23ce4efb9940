"""Post-training quantizers behind ``confirm`` and ``doctor``: the :class:`~repcurate.quantize.base.Quantizer`
protocol (``base``) and the registry by name (``registry``: ``mct``, the default and the doctor's, and
``onnxruntime``). The held-out data the quantized models are scored on is :mod:`repcurate.evaluate`'s."""
