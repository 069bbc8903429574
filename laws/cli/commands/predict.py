"""Predict the loss of a model of N parameters trained on D tokens from a fit (or law) file."""

from __future__ import annotations

import argparse

from laws.cli.common import Output, quantity, read_fit
from laws.units import human

NAME = "predict"
HELP = "loss at (N, D) from a fit file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fit", required=True, help="fit or law JSON")
    parser.add_argument("--n", type=quantity, required=True, help="parameters, e.g. 2.27B")
    parser.add_argument("--d", type=quantity, required=True, help="tokens, e.g. 341B")
    parser.add_argument("--language", help="for a per-language fit")


def run(args: argparse.Namespace) -> Output:
    law, _ = read_fit(args.fit, args.language)
    loss = float(law.predict(args.n, args.d))
    data = {"law": law.name, "n": args.n, "d": args.d, "loss": loss}
    return Output(data, f"{law.name}: L(N={human(args.n)}, D={human(args.d)}) = {loss:.6f}")
