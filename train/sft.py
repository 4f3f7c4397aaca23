"""Supervised fine-tuning recipe: read a YAML run config, train, write the adapter folder.

    python train/sft.py --config configs/sft/tiny-omni-zero2.yaml
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml train/sft.py --config configs/sft/<run>.yaml

Same as `apallm train sft --config ...`; every piece lives in apallm.training.sft.
"""

import argparse

from apallm.training.sft import SFTConfig, train_sft


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--resume", nargs="?", const=True, default=None)
    args = ap.parse_args()
    overrides = {k: v for k, v in (("output_dir", args.output_dir), ("resume_from_checkpoint", args.resume))
                 if v is not None}
    print(f"adapter folder: {train_sft(SFTConfig.from_yaml(args.config, overrides))}")


if __name__ == "__main__":
    main()
