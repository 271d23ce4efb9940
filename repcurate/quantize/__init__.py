"""Post-training quantizers behind ``confirm`` and ``doctor``: the :class:`~repcurate.quantize.base.Quantizer`
protocol (``base``), the registry by name (``registry``: ``mct``, the default and the doctor's, and ``onnxruntime``),
and the held-out evaluation data the quantized models are scored on (``evaluation``)."""
