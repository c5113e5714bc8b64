"""Training loop for the deep networks, and the out-of-fold / refit procedures built on it.

One call of :func:`train` is one model: class-weighted cross-entropy or focal loss, AdamW,
linear warm-up then cosine decay (per step), gradient clipping, AMP on CUDA only, early stopping
on a validation set of whole subjects, ``best.pt`` / ``last.pt`` checkpoints and resume from
``last.pt``. Every random draw of a training pass is seeded from ``(seed, pass)``, so a resumed
run repeats an uninterrupted one. A checkpoint is resumed only when its fingerprint (network
class, training settings, the model's whole configuration and a content hash of its data, labels
included) matches; anything else, a state dict that no longer fits included, trains afresh.

In this code a *pass* is one sweep over the (capped) training set (``max_passes``); "epoch"
means only a window of signal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from epochstack.models.deep.data import (
    IGNORE_INDEX,
    EpochReader,
    EpochSampler,
    EpochSequenceDataset,
    augment,
    context_rows,
    prediction_chunks,
)
from epochstack.models.deep.networks import network_context
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


def resolve_device(name: str | None) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


def predict_logits(
    network: nn.Module,
    reader: EpochReader,
    table: pd.DataFrame,
    device: torch.device,
    length: int = 256,
) -> torch.Tensor:
    """Logits ``(len(table), n_classes)`` in ``table`` order, one chunk of a recording at a time."""
    table = table.reset_index(drop=True)
    context = network_context(network)
    out: torch.Tensor | None = None
    network.eval()
    with torch.inference_mode():
        for chunk in prediction_chunks(table, length):
            rows = context_rows(chunk.rows, context, reader.n_rows(chunk.recording_id))
            x = torch.from_numpy(reader.read(chunk.recording_id, rows)).unsqueeze(0).to(device)
            logits = network(x)[0].float().cpu()
            if out is None:
                out = torch.zeros(len(table), logits.shape[1])
            out[torch.as_tensor(chunk.targets)] = logits
    return out if out is not None else torch.zeros(0, 0)


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _atomic_save(payload: dict, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(f".{path.name}.partial")
    torch.save(payload, partial_path)
    partial_path.replace(path)


def _resume(
    last_path: Path,
    fingerprint: str,
    network,
    optimizer,
    scheduler,
    scaler,
    device,
    description: str,
) -> dict | None:
    """The saved training state when ``last.pt`` belongs to this very model and data, else None."""
    try:
        saved = torch.load(last_path, map_location=device, weights_only=False)
        if saved.get("fingerprint") != fingerprint:
            logger.info(
                "%s: %s belongs to other settings or data; training from scratch.",
                description,
                last_path,
            )
            return None
        network.load_state_dict(saved["network"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
    except (RuntimeError, KeyError, ValueError, EOFError, OSError) as error:
        logger.info(
            "%s: %s cannot be resumed (%s); training from scratch.",
            description,
            last_path,
            str(error).splitlines()[0],
        )
        return None
    return saved["state"]


def train(
    network: nn.Module,
    train_set: EpochSequenceDataset,
    val_set: EpochSequenceDataset | None,
    settings: dict,
    *,
    seed: int,
    sfreq: float,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[PassRecord], None]] = (),
    description: str = "train",
    identity: dict | None = None,
) -> TrainingResult:
    """Train ``network``; returns it with the weights of its best validation pass.

    ``callbacks`` run after each pass, once its checkpoints are written (MLflow logging, Optuna
    pruning); an exception there stops training, and a later call resumes from ``last.pt``.
    ``identity`` (the model's configuration and data fingerprint) joins the checkpoint
    fingerprint. Without a validation set the last pass is the best.
    """
    settings = training_settings(settings)
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    seed_everything(seed)
    network.to(device)
    weights = loss_weights(train_set.codes, train_set.n_classes, settings["class_weight"])
    criterion = make_loss(settings, weights).to(device)
    sampler = EpochSampler(
        len(train_set),
        seed,
        max_items=-(-int(settings["max_train_samples"]) // int(settings["sequence_length"])),
        weights=train_set.chunk_weights() if settings["balanced_sampling"] else None,
    )
    loader = DataLoader(
        train_set,
        batch_size=int(settings["batch_size"]),
        sampler=sampler,
        num_workers=int(settings["num_workers"]),
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=device.type == "cuda",
    )
    max_passes = int(settings["max_passes"])
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=float(settings["learning_rate"]),
        weight_decay=float(settings["weight_decay"]),
    )
    scheduler = make_scheduler(
        optimizer, max_passes * max(len(loader), 1), settings["warmup_fraction"]
    )
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    fingerprint = _fingerprint(
        type(network).__name__,
        settings,
        seed,
        identity or {},
        [(c.recording_id, c.rows.tolist()) for c in train_set.chunks],
        train_set.codes.tolist(),
        [] if val_set is None else val_set.table["epoch_id"].astype(str).tolist(),
        [] if val_set is None else val_set.codes.tolist(),
    )
    state = {
        "pass": 0,
        "best_score": -np.inf,
        "best_pass": -1,
        "stale": 0,
        "history": [],
        "finished": False,
    }
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
    last_path = checkpoint_dir / "last.pt" if checkpoint_dir else None
    best_path = checkpoint_dir / "best.pt" if checkpoint_dir else None
    if last_path is not None and settings["resume"] and last_path.exists():
        saved_state = _resume(
            last_path, fingerprint, network, optimizer, scheduler, scaler, device, description
        )
        if saved_state is not None:
            state = saved_state
            logger.info(
                "%s: resuming from %s after %d of %d passes.",
                description,
                last_path,
                state["pass"],
                max_passes,
            )
    resumed_at = state["pass"]
    best_weights = None
    if best_path is not None and best_path.exists() and resumed_at > 0:
        best_weights = torch.load(best_path, map_location="cpu", weights_only=False)["network"]

    progress = tqdm(range(state["pass"], max_passes), desc=description, leave=False, disable=None)
    for pass_index in progress:
        if state["finished"]:
            break
        start = time.perf_counter()
        torch.manual_seed(seed * 1000 + pass_index)  # dropout
        augment_generator = torch.Generator().manual_seed(seed * 1000 + pass_index)
        sampler.set_pass(pass_index)
        network.train()
        total_loss, n_batches, y_true, y_pred = 0.0, 0, [], []
        for x, y in loader:
            if settings["augmentation"]:
                x = augment(x, settings["augmentation"], sfreq, augment_generator)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device):
                logits = network(x)
                loss = criterion(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(network.parameters(), float(settings["gradient_clip"]))
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total_loss += float(loss.detach())
            n_batches += 1
            keep = y.reshape(-1) != IGNORE_INDEX
            y_true.append(y.reshape(-1)[keep].cpu())
            y_pred.append(logits.detach().reshape(-1, logits.shape[-1]).argmax(1)[keep].cpu())
        train_score = (
            score(torch.cat(y_true).numpy(), torch.cat(y_pred).numpy(), settings["metric"])
            if y_true
            else float("nan")
        )
        val_loss, val_score = float("nan"), float("nan")
        if val_set is not None and len(val_set.table):
            logits = predict_logits(
                network, val_set.reader, val_set.table, device, int(settings["predict_length"])
            )
            codes = torch.as_tensor(val_set.codes)
            keep = codes != IGNORE_INDEX
            with torch.no_grad():
                val_loss = float(criterion(logits[keep].to(device), codes[keep].to(device)))
            val_score = score(
                codes[keep].numpy(), logits[keep].argmax(1).numpy(), settings["metric"]
            )
        record = PassRecord(
            pass_index,
            total_loss / max(n_batches, 1),
            train_score,
            val_loss,
            val_score,
            float(scheduler.get_last_lr()[0]),
            time.perf_counter() - start,
        )
        state["history"].append(asdict(record))
        current = (
            val_score if not np.isnan(val_score) else float(pass_index)
        )  # no validation: the latest pass is best
        if current > state["best_score"]:
            state.update(best_score=current, best_pass=pass_index, stale=0)
            best_weights = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
            if best_path is not None:
                _atomic_save(
                    {"network": best_weights, "pass": pass_index, "score": current}, best_path
                )
        else:
            state["stale"] += 1
        state["pass"] = pass_index + 1
        state["finished"] = (
            state["stale"] >= int(settings["patience"]) or state["pass"] >= max_passes
        )
        if last_path is not None:
            _atomic_save(
                {
                    "network": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "state": state,
                    "fingerprint": fingerprint,
                },
                last_path,
            )
        progress.set_postfix(loss=f"{record.train_loss:.3f}", val=f"{val_score:.3f}")
        for callback in callbacks:
            callback(record)
        if state["stale"] >= int(settings["patience"]):
            logger.info(
                "%s: early stop after pass %d (best pass %d, %s %.3f).",
                description,
                pass_index,
                state["best_pass"],
                settings["metric"],
                state["best_score"],
            )
            break
    if best_weights is not None:
        network.load_state_dict(best_weights)
    history = [PassRecord(**h) for h in state["history"]]
    return TrainingResult(
        network.cpu(), history, int(state["best_pass"]), float(state["best_score"]), resumed_at
    )


# --- one model: configuration, validation subjects, fit --------------------------------------


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


def choose_validation_subjects(
    subjects: Sequence[str], fraction: float, minimum: int, seed: int
) -> list[str]:
    """Whole subjects held out of a training pool for early stopping: ``fraction`` of them, at
    least ``minimum``, always leaving at least one subject to train on."""
    unique = sorted({str(s) for s in subjects})
    n = min(max(int(minimum), int(np.ceil(float(fraction) * len(unique)))), len(unique) - 1)
    if n <= 0:
        return []
    return sorted(np.random.default_rng(seed).choice(unique, size=n, replace=False).tolist())


def fit_model(
    config: DeepModelConfig,
    build: Callable[[], nn.Module],
    reader: EpochReader,
    pool: pd.DataFrame,
    classes: list[str],
    *,
    sfreq: float,
    device: str | torch.device = "auto",
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[Callable[[PassRecord], None]] = (),
    description: str = "train",
    identity: dict | None = None,
) -> TrainingResult:
    """Build a network (weights drawn from ``config.seed``) and train it on a pool of labelled
    epochs, early-stopping on whole subjects taken from that pool."""
    seed_everything(config.seed)
    network = build()
    held_out = choose_validation_subjects(
        pool["subject_id"], config.validation_fraction, config.min_validation_subjects, config.seed
    )
    is_val = pool["subject_id"].astype(str).isin(held_out).to_numpy()
    if not held_out:
        logger.warning(
            "%s: a single training subject, so no validation subjects: the last pass is kept.",
            description,
        )
    context = network_context(network)
    length = int(training_settings(config.training)["sequence_length"])
    train_set = EpochSequenceDataset(reader, pool[~is_val], classes, context, length)
    val_set = EpochSequenceDataset(reader, pool[is_val], classes, context, 1) if held_out else None
    result = train(
        network,
        train_set,
        val_set,
        config.training,
        seed=config.seed,
        sfreq=sfreq,
        device=device,
        checkpoint_dir=checkpoint_dir,
        callbacks=callbacks,
        description=description,
        identity={"config": config.to_dict(), **(identity or {})},
    )
    result.train_epoch_ids = pool.loc[~is_val, "epoch_id"].astype(str).to_numpy(dtype=object)
    result.val_epoch_ids = pool.loc[is_val, "epoch_id"].astype(str).to_numpy(dtype=object)
    return result


def predict_table(
    network: nn.Module,
    reader: EpochReader,
    table: pd.DataFrame,
    device: str | torch.device = "auto",
    length: int = 256,
) -> np.ndarray:
    """Class probabilities ``(len(table), n_classes)`` in ``table`` order."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    network.to(device)
    proba = torch.softmax(predict_logits(network, reader, table, device, length), dim=1).numpy()
    network.cpu()
    return proba
