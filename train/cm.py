"""Countermeasure training recipe: read a YAML run config, train, write package checkpoints.

    python train/cm.py --config configs/cm/tiny-aasist-toy.yaml
    python train/cm.py --config configs/cm/xlsr-aasist.yaml --resume

Same as `apallm train cm --config ...`; every piece lives in apallm.cm.train.
"""

import argparse

from apallm.cm.train import CMTrainConfig, train_cm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    overrides = {k: v for k, v in (("output_dir", args.output_dir), ("epochs", args.epochs),
                                   ("resume", args.resume or None)) if v is not None}
    print(f"best checkpoint: {train_cm(CMTrainConfig.from_yaml(args.config, overrides))}")


if __name__ == "__main__":
    main()
