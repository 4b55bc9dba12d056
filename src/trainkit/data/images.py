"""What the image DataModules share: uint8 images in memory, class names, and normalisation and
augmentation of whole batches on the model's device.

Images are held as one uint8 tensor (N, C, H, W) - 4x less memory than float32 - and batches are
sliced from it like every InMemoryDataModule. Conversion to float, normalisation and augmentation
run on whole batches in `on_after_batch_transfer`, i.e. after the batch reached the model's
device (the GPU when there is one), instead of per sample with PIL transforms. Batches taken
straight from the loaders (outside a Trainer) are therefore still uint8: call
`datamodule.preprocess(x)` on them.

Normalisation: `mean`/`std` per channel on the [0, 1] scale; null (the default) computes them
from the training split (after validation and test were carved out, so no statistic sees them)
and keeps them in `self.fitted` with the class names.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from trainkit.data.base import InMemoryDataModule
from trainkit.errors import ConfigError

log = logging.getLogger(__name__)


def channel_histograms(x: torch.Tensor) -> torch.Tensor:
    """Counts of the values 0-255 in each channel of uint8 images (N, C, H, W), shape (C, 256);
    the histograms of a set's batches add up to the set's."""
    return torch.stack(
        [torch.bincount(x[:, c].reshape(-1), minlength=256) for c in range(x.shape[1])]
    )


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], from 256-bin histograms
    (exact, and no float copy of the whole training set)."""
    return histogram_stats(channel_histograms(x))


def histogram_stats(histograms: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std on the [0, 1] scale from `channel_histograms`."""
    values = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for hist in histograms.double():
        mean = (hist * values).sum() / hist.sum()
        var = (hist * (values - mean) ** 2).sum() / hist.sum()
        means.append(float(mean))
        stds.append(float(var.sqrt().clamp_min(1e-6)))
    return means, stds


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding=pad) for a whole batch: zero-pad every image by
    `pad` pixels, then cut it back to its size at an independent random offset per image."""
    n, c, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=dev) + torch.arange(h, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=dev) + torch.arange(w, device=dev)
    rows = torch.arange(n, device=dev)[:, None, None, None]
    chans = torch.arange(c, device=dev)[None, :, None, None]
    return padded[rows, chans, dy[:, None, :, None], dx[:, None, None, :]]


def random_hflip(x: torch.Tensor) -> torch.Tensor:
    """Mirror each image of the batch left-right with probability 1/2."""
    flip = torch.rand(len(x), device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class ImageDataModule(InMemoryDataModule):
    """Base of the uint8 image DataModules. A subclass's `load_splits()` returns uint8 images
    and long labels per split, after calling `self.fit_images(train_images, class_names)`."""

    def __init__(
        self,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        augment: bool = False,
        shift_pixels: int = 0,
        hflip: bool = False,
        **loader,
    ) -> None:
        super().__init__(**loader)
        self.mean = None if mean is None else [float(m) for m in mean]
        self.std = None if std is None else [float(s) for s in std]
        self.augment, self.shift_pixels, self.hflip = augment, shift_pixels, hflip
        self._affine: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def class_names(self) -> list[str]:
        return list(self.fitted.get("class_names", []))

    @property
    def dims(self) -> dict:
        self.setup()
        return {
            "input_shape": list(self.splits["train"][0].shape[1:]),
            "num_classes": len(self.class_names),
        }

    def check_settings(self) -> None:
        """Raise ConfigError for impossible augmentation / normalisation settings (called when
        the data is loaded: errors raised in __init__ are wrapped by Hydra)."""
        if self.shift_pixels < 0:
            raise ConfigError(f"data.shift_pixels must be >= 0, got {self.shift_pixels}.")
        if (self.mean is None) != (self.std is None) or min(self.std or [1]) <= 0:
            raise ConfigError(
                "data.mean and data.std must both be null (computed from the "
                "training split) or both lists with positive std values."
            )

    def fit_images(
        self,
        x_train: torch.Tensor | None,
        class_names: list[str],
        name: str,
        hist: torch.Tensor | None = None,
    ) -> None:
        """Class names and per-channel normalisation: the checkpoint's when it was restored
        (load_state_dict), else the configured ones or the training split's statistics (from
        `hist`, its channel_histograms summed over batches, when it is not held in memory)."""
        if "mean" not in self.fitted:
            channels = x_train.shape[1] if hist is None else len(hist)
            if self.mean is not None:
                mean, std = self.mean, self.std
            else:
                mean, std = channel_stats(x_train) if hist is None else histogram_stats(hist)
            if len(mean) != channels or len(std) != channels:
                raise ConfigError(
                    f"data.mean and data.std need {channels} values (one per channel) "
                    f"for {name}, got {len(mean)} and {len(std)}."
                )
            self.fitted.update(mean=list(mean), std=list(std))
            if self.mean is None:
                log.info(
                    "%s normalisation from the training split: mean %s, std %s",
                    name,
                    [round(m, 4) for m in mean],
                    [round(s, 4) for s in std],
                )
        self.fitted.setdefault("class_names", list(class_names))

    # -- whole-batch preprocessing -----------------------------------------------------------
    def preprocess(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """uint8 batch -> normalised float batch; random shifts / flips only when `train`."""
        if train and self.augment:
            if self.shift_pixels:
                x = random_shift(x, self.shift_pixels)
            if self.hflip:
                x = random_hflip(x)
        if x.device not in self._affine:  # (x / 255 - mean) / std as one multiply-add
            std = torch.tensor(self.fitted["std"], device=x.device).view(1, -1, 1, 1)
            mean = torch.tensor(self.fitted["mean"], device=x.device).view(1, -1, 1, 1)
            self._affine[x.device] = (1.0 / (255.0 * std), -mean / std)
        scale, shift = self._affine[x.device]
        return torch.addcmul(shift, x.float(), scale)

    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        """Lightning calls this on every batch once it is on the device.

        Lightning converts a batch's float tensors for `trainer.precision` (64-true, 16-true, ...)
        before this hook, when the images are still uint8, so that conversion is applied here.
        """
        x, y = batch
        if self.trainer is None:
            return self.preprocess(x), y
        x = self.preprocess(x, train=self.trainer.training)
        return self.trainer.precision_plugin.convert_input(x), y
