"""Write the digits in LitData's streaming format: python -m plain_lightning.make_stream OUT
(litdata.optimize runs `row` in worker processes: keep its imports light)."""

import sys

import litdata
import numpy as np
from sklearn.datasets import load_digits

DIGITS = load_digits()


def row(i: int) -> dict:
    return {"x": (DIGITS.data[i] / 16.0).astype(np.float32), "y": int(DIGITS.target[i])}


if __name__ == "__main__":
    # the same split as DigitsDataModule's is not needed: the training rows only
    litdata.optimize(
        fn=row, inputs=list(range(1257)), output_dir=sys.argv[1], chunk_bytes="64KB",
        num_workers=1,
    )  # fmt: skip
