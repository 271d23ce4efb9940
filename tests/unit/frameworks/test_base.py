"""Framework-independent helpers of repcurate.frameworks.base."""
from __future__ import annotations

import numpy as np

from repcurate.frameworks.base import MAX_OUTPUT_BATCH, OUTPUT_BATCH_ELEMENTS, output_batch_size


def test_output_batches_shrink_with_the_input_size():
    assert output_batch_size(np.zeros((1000, 1, 28, 28), np.float32)) == MAX_OUTPUT_BATCH  # small images: the cap
    assert output_batch_size(np.zeros((500, 3, 224, 224), np.float32)) == OUTPUT_BATCH_ELEMENTS // (3 * 224 * 224) == 27
    assert output_batch_size(np.zeros((2, 3, 4096, 4096), np.float32)) == 1  # never 0, however large a row
    assert output_batch_size(np.zeros((5, 0), np.float32)) == MAX_OUTPUT_BATCH  # an empty row does not divide by 0
