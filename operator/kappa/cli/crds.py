"""`kappa crds [--check]`: write the CRDs generated from the API models (kappa.api.crd) as YAML, or check that
the committed ones are what the models generate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml


def crds_arguments(crds: argparse.ArgumentParser) -> None:
    """The flags of `kappa crds`."""
    crds.add_argument(
        "--out", action="append", metavar="DIR", help="write (or --check) here instead; repeatable"
    )
    crds.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    crds.set_defaults(func=_cmd_crds)


def _cmd_crds(args: argparse.Namespace) -> int:
    from kappa.api.crd import CRD_DIRS, all_crds

    stale = []
    for out in map(Path, args.out or CRD_DIRS):
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
        for name, crd in all_crds().items():
            text = render_yaml(crd)
            path = out / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.write_text(text)
                print(f"wrote {path}")
    if stale:
        print("CRDs differ from the models; run `make crds`: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def render_yaml(obj: object) -> str:
    header = "# Generated from operator/kappa/api by `kappa crds`. Do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, width=110)
