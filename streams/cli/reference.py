"""``vigil reference build FILE --model M --version V``: a reference profile from history.

Reads a JSONL file of InferenceEvents, keeps the valid events of model ``M`` (of
version ``V`` when the events carry one; events without ``model_version`` count as
that version), and writes the profile that ``reference:`` in the config points a
model's drift detectors at.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from detectors.reference import ReferenceBuilder
from streams.cli.options import Subparsers, settings_of, with_config
from streams.config import Settings
from streams.errors import VigilError
from streams.events.schema import decode_inference

__all__ = ["build_reference_file", "register"]


def build_reference_file(
    settings: Settings,
    path: str,
    *,
    model_id: str,
    version: str,
    out: str | None = None,
    created_at: datetime | None = None,
) -> Path:
    """Build and save the profile; returns its path. Raises VigilError if no event fits."""
    ms = settings.for_model(model_id)
    builder = ReferenceBuilder(
        model_id,
        version,
        features={name: f.as_dict() for name, f in ms.features.items()} or None,
        top_k=ms.drift.top_k,
        max_features=settings.worker.max_features_per_model,
    )
    used = skipped = 0
    with Path(path).open("rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                event = decode_inference(line, settings.worker.max_event_bytes)
            except ValueError:
                skipped += 1
                continue
            if event.model_id != model_id or event.model_version not in (version, "unknown"):
                continue
            builder.add(event.features, event.prediction)
            used += 1
    if used == 0:
        raise VigilError(
            f"no valid events of model {model_id!r} version {version!r} in {path} "
            f"({skipped} invalid lines skipped)"
        )
    profile = builder.build(created_at=created_at)
    target = Path(out or f"reference-{model_id}-{version}.json")
    profile.save(target)
    return target


def run_build(args: argparse.Namespace) -> int:
    path = build_reference_file(
        settings_of(args), args.file, model_id=args.model, version=args.version, out=args.out
    )
    print(f"wrote reference profile {path}")
    return 0


def register(sub: Subparsers) -> None:
    ref = sub.add_parser("reference", help="reference profiles")
    ref_sub = ref.add_subparsers(dest="reference_command", required=True)
    rb = with_config(ref_sub.add_parser("build", help="build a profile from historical events"))
    rb.add_argument("file")
    rb.add_argument("--model", required=True)
    rb.add_argument("--version", required=True)
    rb.add_argument("--out", help="output path (default reference-<model>-<version>.json)")
    rb.set_defaults(func=run_build)
