"""Small example models that ship with repcurate, trained on :mod:`repcurate.example_detection`'s composites.

- :mod:`repcurate.models.tiny_yolo` — an anchor-free two-scale detector (raw head outputs, decode + NMS in
  ``postprocess``);
- :mod:`repcurate.models.unet_lite` — a U-Net-lite semantic segmenter.

Each module has ``make_model()`` (the trained model in eval mode, weights beside the module), ``preprocess``
(a PIL image → the model's input array), so ``--model repcurate.models.tiny_yolo:make_model --preprocess
repcurate.models.tiny_yolo:preprocess`` works from any installed copy. They import only torch, torchvision,
numpy and PIL (no other part of repcurate).
"""
