"""The confusion matrix of the validation set, and for images a grid of misclassified validation
images, as TensorBoard images (tab Images / Time Series) after every validation, at the
iteration it followed: `val_images/confusion_matrix`, `val_images/misclassified` (a tag group of
their own, after the scalars).

For any classifier whose `validation_step` returns its logits (N, classes) for the batch, as
trainkit's do; a module that returns nothing gets one line saying so, and no images. The cost is
bounded: per validation batch an argmax and a count (torchmetrics, reduced over processes under
DDP) and at most `misclassified` images kept; per validation one image drawn with Pillow (a few
milliseconds, no matplotlib). Off: `callbacks.confusion_matrix=null`. TensorBoard shows 10
images per tag by default: `tensorboard --logdir logs --samples_per_plugin images=100` shows
them all.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torchmetrics.classification import MulticlassConfusionMatrix

from trainkit import data_contract
from trainkit.loggers import iteration

log = logging.getLogger(__name__)

CELL, TILE = 36, 64  # pixels: a matrix cell at least, a misclassified image
MATRIX_WIDTH = 480  # pixels the matrix's cells take together (a card's width in TensorBoard)
IMAGES = "val_images"  # their own tag group, after the scalars' groups (epoch, test, train, val)


class ConfusionMatrixImages(Callback):
    """See the module docstring. `max_classes`: above it, no matrix (it would not be legible)."""

    def __init__(self, max_classes: int = 30, misclassified: int = 16) -> None:
        self.max_classes, self.misclassified = max_classes, misclassified
        self._matrix: MulticlassConfusionMatrix | None = None
        self._examples: list[tuple[torch.Tensor, int, int]] = []
        self._said = False

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._examples = []
        if self._matrix is not None:
            self._matrix.reset()

    def on_validation_batch_end(
        self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if trainer.sanity_checking or not self._active(trainer):
            return
        logits = outputs.get("logits") if isinstance(outputs, dict) else outputs
        if not (isinstance(logits, torch.Tensor) and logits.dim() == 2):
            if data_contract.class_names(trainer.datamodule):  # a classifier: say why not
                self._say_once("validation_step returns no logits (N, classes) to count")
            return None
        if logits.shape[1] > self.max_classes:
            return self._say_once(f"{logits.shape[1]} classes are more than max_classes")
        x, y = data_contract.inputs(batch), data_contract.targets(batch)
        if not isinstance(y, torch.Tensor):
            return self._say_once("the validation batches have no targets it can find")
        if self._matrix is None:
            self._matrix = MulticlassConfusionMatrix(logits.shape[1]).to(logits.device)
        preds = logits.argmax(-1)
        self._matrix.update(preds, y)
        room = self.misclassified - len(self._examples)
        if room > 0 and isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point():
            wrong = (preds != y).nonzero()[:room, 0]
            for i in wrong.tolist():
                self._examples.append((x[i].detach().float().cpu(), int(y[i]), int(preds[i])))
        return None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._matrix is None or not self._active(trainer):
            return
        counts = self._matrix.compute().cpu().numpy()  # every process: it is a collective
        if not trainer.is_global_zero:
            return
        names = data_contract.class_names(trainer.datamodule)
        names = names if len(names) == len(counts) else [str(i) for i in range(len(counts))]
        x = iteration(trainer)  # where the val/ scalars of this validation are
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                writer = logger.experiment
                writer.add_image(f"{IMAGES}/confusion_matrix", draw_matrix(counts, names), x,
                                 dataformats="HWC")  # fmt: skip
                if self._examples:
                    grid = draw_examples(self._examples, names)
                    writer.add_image(f"{IMAGES}/misclassified", grid, x, dataformats="HWC")

    def _active(self, trainer: L.Trainer) -> bool:
        return any(isinstance(lg, TensorBoardLogger) for lg in trainer.loggers)

    def _say_once(self, why: str) -> None:
        if not self._said:
            log.info("no confusion matrix images: %s", why)
            self._said = True


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        return ImageFont.load_default()


def draw_matrix(counts: np.ndarray, names: list[str]) -> np.ndarray:
    """The matrix as an RGB uint8 image: rows true classes, columns predicted ones, each cell's
    count centred in it, cells apart by a white gap (so neighbouring counts such as 1 and 0 never
    read as 10), and its blue proportional to the row's share (recall per class). Drawn at about
    the width a TensorBoard card shows, so that it is not scaled up (blurred) there."""
    from PIL import Image, ImageDraw

    n = len(counts)
    cell = max(CELL, min(200, MATRIX_WIDTH // n))
    font = _font(max(11, min(22, cell // 3)))
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [name[:14] for name in names]
    label_w = 12 + max(int(draw.textlength(label, font=font)) for label in labels)
    top, gap = 30 + cell // 2, 2
    width, height = label_w + n * cell + 12, top + n * cell + 30
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    draw.text((label_w, 4), "predicted ->", fill="black", font=font)
    for i in range(n):
        y = top + i * cell + cell // 2
        draw.text((label_w - 6, y), labels[i], fill="black", font=font, anchor="rm")
        x = label_w + i * cell + cell // 2
        draw.text((x, top - 4), labels[i][: max(1, cell // 9)], fill="black", font=font,
                  anchor="md")  # fmt: skip
        for j in range(n):
            level = share[i, j]
            fill = tuple(int(255 - level * (255 - c)) for c in (8, 48, 107))  # white -> navy
            box = (label_w + j * cell + gap, top + i * cell + gap,
                   label_w + (j + 1) * cell - gap, top + (i + 1) * cell - gap)  # fmt: skip
            draw.rectangle(box, fill=fill, outline=(200, 200, 200))
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            draw.text(centre, str(int(counts[i, j])), font=font, anchor="mm",
                      fill="white" if level > 0.5 else "black")  # fmt: skip
    draw.text((4, height - 24), "rows: true class", fill="black", font=font)
    return np.asarray(image)


def draw_examples(examples: list[tuple[torch.Tensor, int, int]], names: list[str]) -> np.ndarray:
    """Misclassified images in a grid, each captioned "true -> predicted" (each image scaled to
    its own min-max range for display)."""
    from PIL import Image, ImageDraw

    cols = min(4, len(examples))
    rows = (len(examples) + cols - 1) // cols
    image = Image.new("RGB", (cols * (TILE + 8), rows * (TILE + 22)), "white")
    draw, font = ImageDraw.Draw(image), _font(10)
    for k, (x, true, pred) in enumerate(examples):
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
        pixels = (x * 255).byte().permute(1, 2, 0).numpy()
        tile = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels[..., :3])
        tile = tile.convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST)
        left, top = (k % cols) * (TILE + 8) + 4, (k // cols) * (TILE + 22)
        image.paste(tile, (left, top + 2))
        caption = f"{names[true][:6]}->{names[pred][:6]}"
        draw.text((left, top + TILE + 5), caption, fill="firebrick", font=font)
    return np.asarray(image)
