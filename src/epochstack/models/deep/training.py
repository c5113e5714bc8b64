"""Training loop for the deep networks: settings, loss, schedule and :func:`train`.

One call of :func:`train` is one model, run by a :class:`Trainer` in named steps: class-weighted
cross-entropy or focal loss, AdamW, linear warm-up then cosine decay (per step), gradient
clipping, AMP on CUDA only, early stopping on a validation set of whole subjects, ``best.pt`` /
``last.pt`` checkpoints and resume from ``last.pt`` (:mod:`epochstack.models.deep.checkpoints`).
Every random draw of a training pass is seeded from ``(seed, pass)``, so a resumed run repeats
an uninterrupted one.

In this code a *pass* is one sweep over the (capped) training set (``max_passes``); "epoch"
means only a window of signal.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from epochstack.models.deep.checkpoints import Checkpoints, fingerprint
from epochstack.models.deep.data import IGNORE_INDEX, EpochSampler, EpochSequenceDataset, augment
from epochstack.models.deep.export import predict_logits, resolve_device
from epochstack.models.engine import scores
from epochstack.models.imbalance import class_weights

logger = logging.getLogger(__name__)

DEFAULT_TRAINING = {
    "max_passes": 8,
    "batch_size": 32,  # chunks per batch
    "sequence_length": 1,  # target epochs per chunk (context epochs come on top)
    "max_train_samples": 0,  # target epochs drawn per pass (0: all)
    "balanced_sampling": False,
    "loss": "cross_entropy",  # cross_entropy | focal
    "class_weight": "inv_sqrt",  # none | inv_sqrt | balanced
    "focal_gamma": 2.0,
    "learning_rate": 3e-3,
    "weight_decay": 1e-2,
    "warmup_fraction": 0.1,
    "gradient_clip": 1.0,
    "metric": "kappa",  # kappa | macro_f1 (validation score: early stopping, best checkpoint, Optuna)
    "patience": 3,
    "augmentation": {},
    "num_workers": 0,
    "predict_length": 256,  # target epochs per chunk at prediction time
    "resume": True,
}
METRICS = ("kappa", "macro_f1")


def training_settings(overrides: dict | None) -> dict:
    """``DEFAULT_TRAINING`` updated with the given settings; unknown keys are an error."""
    unknown = set(overrides or {}) - set(DEFAULT_TRAINING)
    if unknown:
        raise ValueError(
            f"unknown training settings {sorted(unknown)}; known: {sorted(DEFAULT_TRAINING)}."
        )
    settings = {**DEFAULT_TRAINING, **(overrides or {})}
    if settings["metric"] not in METRICS:
        raise ValueError(f"training.metric {settings['metric']!r}: use one of {list(METRICS)}.")
    return settings


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy/random seeded from the worker's torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def score(y_true: np.ndarray, y_pred: np.ndarray, metric: str) -> float:
    """The validation metric (``kappa`` or ``macro_f1``) of class-index labels; NaN without labels."""
    return float(scores(y_true, y_pred)[metric]) if len(y_true) else float("nan")


def loss_weights(codes: np.ndarray, n_classes: int, scheme: str) -> torch.Tensor | None:
    """Per-class loss weights (:func:`epochstack.models.imbalance.class_weights`) of the training targets."""
    weights = class_weights(
        np.bincount(codes[codes >= 0], minlength=n_classes),
        scheme,
        "deep_models.training.class_weight",
    )
    return None if weights is None else torch.as_tensor(weights, dtype=torch.float32)


class FocalLoss(nn.Module):
    """Multi-class focal loss ``-(1 - p_t)^gamma * log p_t`` with optional class weights.

    Written here because torchvision's ``sigmoid_focal_loss`` is binary (one sigmoid per class).
    Weighted mean over non-ignored targets, like ``nn.CrossEntropyLoss``.
    """

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = float(gamma)
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = target != IGNORE_INDEX
        logits, target = logits[keep], target[keep]
        log_p = torch.log_softmax(logits.float(), dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        weight = self.weight[target] if self.weight is not None else torch.ones_like(loss)
        return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


def make_loss(settings: dict, weights: torch.Tensor | None) -> nn.Module:
    if settings["loss"] == "focal":
        return FocalLoss(settings["focal_gamma"], weights)
    if settings["loss"] == "cross_entropy":
        return nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE_INDEX)
    raise ValueError(f"loss {settings['loss']!r}: use cross_entropy or focal.")


def make_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero."""
    warmup = int(round(total_steps * float(warmup_fraction)))
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(total_steps - warmup, 1)
    )
    if warmup == 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0 / warmup, total_iters=warmup
    )
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


@dataclass
class PassRecord:
    """One training pass: losses and validation-metric values, learning rate, duration."""

    pass_index: int
    train_loss: float
    train_score: float
    val_loss: float
    val_score: float
    learning_rate: float
    seconds: float


@dataclass
class TrainingResult:
    """The trained network (best checkpoint's weights) and its history."""

    network: nn.Module
    history: list[PassRecord]
    best_pass: int
    best_score: float
    resumed_at: int = 0  # passes already done when training (re)started from last.pt
    train_epoch_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    val_epoch_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class Trainer:
    """One :func:`train` call as named steps: set-up, resume, training pass, validation, best
    weights, last checkpoint, early stop. ``state`` (passes done, best pass and score, passes
    without improvement, history) is what ``last.pt`` saves. ``identity`` (the model's
    configuration and data fingerprint) joins the checkpoint fingerprint."""

    def __init__(
        self,
        network: nn.Module,
        train_set: EpochSequenceDataset,
        val_set: EpochSequenceDataset | None,
        settings: dict,
        *,
        seed: int,
        sfreq: float,
        device: str | torch.device = "auto",
        checkpoint_dir: str | Path | None = None,
        description: str = "train",
        identity: dict | None = None,
    ):
        settings, device = training_settings(settings), resolve_device(device)
        self.network, self.train_set, self.val_set = network, train_set, val_set
        self.settings, self.seed, self.sfreq = settings, seed, sfreq
        self.device, self.description = device, description
        self.max_passes = int(settings["max_passes"])
        seed_everything(seed)
        network.to(device)
        weights = loss_weights(train_set.codes, train_set.n_classes, settings["class_weight"])
        self.criterion = make_loss(settings, weights).to(device)
        self._set_up()
        self.checkpoints = Checkpoints(checkpoint_dir, self._fingerprint(identity), description)
        self.state = {"pass": 0, "best_score": -np.inf, "best_pass": -1, "stale": 0}
        self.state.update(history=[], finished=False)
        self.best_weights: dict | None = None

    def _set_up(self) -> None:
        """The seeded sampler (capped, optionally balanced), the loader of training chunks,
        AdamW, warm-up then cosine decay per step, and the AMP scaler (active on CUDA only)."""
        settings, seed = self.settings, self.seed
        self.sampler = EpochSampler(
            len(self.train_set),
            seed,
            max_items=-(-int(settings["max_train_samples"]) // int(settings["sequence_length"])),
            weights=self.train_set.chunk_weights() if settings["balanced_sampling"] else None,
        )
        self.loader = DataLoader(
            self.train_set,
            batch_size=int(settings["batch_size"]),
            sampler=self.sampler,
            num_workers=int(settings["num_workers"]),
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(seed),
            pin_memory=self.device.type == "cuda",
        )
        self.optimizer = torch.optim.AdamW(
            self.network.parameters(),
            lr=float(settings["learning_rate"]),
            weight_decay=float(settings["weight_decay"]),
        )
        total_steps = self.max_passes * max(len(self.loader), 1)
        self.scheduler = make_scheduler(self.optimizer, total_steps, settings["warmup_fraction"])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda")
        # what last.pt saves and resumes besides the run state
        self.parts = {
            "network": self.network,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
        }

    def _fingerprint(self, identity: dict | None) -> str:
        """What ``last.pt`` must belong to: network class, settings, seed, identity and data."""
        train_set, val_set = self.train_set, self.val_set
        return fingerprint(
            type(self.network).__name__,
            self.settings,
            self.seed,
            identity or {},
            [(c.recording_id, c.rows.tolist()) for c in train_set.chunks],
            train_set.codes.tolist(),
            [] if val_set is None else val_set.table["epoch_id"].astype(str).tolist(),
            [] if val_set is None else val_set.codes.tolist(),
        )

    def resume(self) -> int:
        """Continue from ``last.pt`` when it belongs to this run; the passes already done."""
        if self.settings["resume"]:
            saved = self.checkpoints.resume(self.parts, self.device)
            if saved is not None:
                self.state = saved
                logger.info(
                    "%s: resuming from %s after %d of %d passes.",
                    self.description,
                    self.checkpoints.last,
                    saved["pass"],
                    self.max_passes,
                )
        if self.state["pass"] > 0:
            self.best_weights = self.checkpoints.best_weights()
        return self.state["pass"]

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step on a batch (clipped gradients); its loss and logits."""
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(self.device):
            logits = self.network(x)
            loss = self.criterion(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        nn.utils.clip_grad_norm_(self.network.parameters(), float(self.settings["gradient_clip"]))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss, logits

    def train_pass(self, pass_index: int) -> tuple[float, float]:
        """One sweep over the training set, seeded from ``(seed, pass)``: mean loss, score."""
        torch.manual_seed(self.seed * 1000 + pass_index)  # dropout
        augment_generator = torch.Generator().manual_seed(self.seed * 1000 + pass_index)
        self.sampler.set_pass(pass_index)
        self.network.train()
        total_loss, n_batches, y_true, y_pred = 0.0, 0, [], []
        for x, y in self.loader:
            if self.settings["augmentation"]:
                x = augment(x, self.settings["augmentation"], self.sfreq, augment_generator)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss, logits = self._step(x, y)
            total_loss += float(loss.detach())
            n_batches += 1
            keep = y.reshape(-1) != IGNORE_INDEX
            y_true.append(y.reshape(-1)[keep].cpu())
            y_pred.append(logits.detach().reshape(-1, logits.shape[-1]).argmax(1)[keep].cpu())
        train_score = (
            score(torch.cat(y_true).numpy(), torch.cat(y_pred).numpy(), self.settings["metric"])
            if y_true
            else float("nan")
        )
        return total_loss / max(n_batches, 1), train_score

    def validate(self) -> tuple[float, float]:
        """Loss and score on the validation subjects (NaN without them)."""
        val_set = self.val_set
        if val_set is None or not len(val_set.table):
            return float("nan"), float("nan")
        length = int(self.settings["predict_length"])
        logits = predict_logits(self.network, val_set.reader, val_set.table, self.device, length)
        codes = torch.as_tensor(val_set.codes)
        keep = codes != IGNORE_INDEX
        with torch.no_grad():
            val_loss = float(
                self.criterion(logits[keep].to(self.device), codes[keep].to(self.device))
            )
        return val_loss, score(
            codes[keep].numpy(), logits[keep].argmax(1).numpy(), self.settings["metric"]
        )

    def keep_best(self, pass_index: int, val_score: float) -> None:
        """Keep (and save to ``best.pt``) the weights of a pass better than all before it."""
        # no validation: the latest pass is best
        current = val_score if not np.isnan(val_score) else float(pass_index)
        if current > self.state["best_score"]:
            self.state.update(best_score=current, best_pass=pass_index, stale=0)
            self.best_weights = {
                k: v.detach().cpu().clone() for k, v in self.network.state_dict().items()
            }
            self.checkpoints.save_best(self.best_weights, pass_index, current)
        else:
            self.state["stale"] += 1

    def run_pass(self, pass_index: int) -> PassRecord:
        """Train, validate, keep the best weights and save ``last.pt``: one pass's record."""
        start = time.perf_counter()
        losses = (*self.train_pass(pass_index), *self.validate())  # train, val: loss and score
        learning_rate = float(self.scheduler.get_last_lr()[0])
        record = PassRecord(pass_index, *losses, learning_rate, time.perf_counter() - start)
        self.state["history"].append(asdict(record))
        self.keep_best(pass_index, record.val_score)
        self.state["pass"] = pass_index + 1
        self.state["finished"] = self.stale() or self.state["pass"] >= self.max_passes
        self.checkpoints.save_last(self.parts, self.state)
        return record

    def stale(self) -> bool:
        """Early stop: ``patience`` passes without improvement."""
        return self.state["stale"] >= int(self.settings["patience"])

    def run(self, callbacks: Sequence[Callable[[PassRecord], None]]) -> TrainingResult:
        """Resume, run the passes left (callbacks after each), end with the best weights."""
        resumed_at = self.resume()
        passes = range(self.state["pass"], self.max_passes)
        progress = tqdm(passes, desc=self.description, leave=False, disable=None)
        for pass_index in progress:
            if self.state["finished"]:
                break
            record = self.run_pass(pass_index)
            progress.set_postfix(loss=f"{record.train_loss:.3f}", val=f"{record.val_score:.3f}")
            for callback in callbacks:
                callback(record)
            if self.stale():
                logger.info(
                    "%s: early stop after pass %d (best pass %d, %s %.3f).",
                    self.description,
                    pass_index,
                    self.state["best_pass"],
                    self.settings["metric"],
                    self.state["best_score"],
                )
                break
        if self.best_weights is not None:
            self.network.load_state_dict(self.best_weights)
        history = [PassRecord(**h) for h in self.state["history"]]
        best_pass, best_score = int(self.state["best_pass"]), float(self.state["best_score"])
        return TrainingResult(self.network.cpu(), history, best_pass, best_score, resumed_at)


def train(
    network: nn.Module,
    train_set: EpochSequenceDataset,
    val_set: EpochSequenceDataset | None,
    settings: dict,
    *,
    callbacks: Sequence[Callable[[PassRecord], None]] = (),
    **options,
) -> TrainingResult:
    """Train ``network``; returns it with the weights of its best validation pass.

    ``options`` are :class:`Trainer`'s keywords (``seed`` and ``sfreq`` required). ``callbacks``
    run after each pass, once its checkpoints are written (MLflow logging, Optuna pruning); an
    exception there stops training, and a later call resumes from ``last.pt``. Without a
    validation set the last pass is the best.
    """
    return Trainer(network, train_set, val_set, settings, **options).run(callbacks)


# Fitted models (DeepModel.config) pickle this class under this module's name: it stays here.
@dataclass
class DeepModelConfig:
    """Everything that defines one deep model: network, inputs, training, validation split, seed.

    ``normalisation``: ``robust`` (per recording and channel: median / IQR of that recording,
    for nights), ``training_set`` (per channel, statistics of the training epochs only, for
    trial datasets whose recordings are single epochs), ``auto`` (``training_set`` when every
    recording holds one epoch, else ``robust``) or ``none``.
    """

    name: str
    architecture: str
    network: dict
    training: dict
    channels: list[str] | None = None
    normalisation: str = "auto"
    clip: float | None = 20.0
    validation_fraction: float = 0.2
    min_validation_subjects: int = 2
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
