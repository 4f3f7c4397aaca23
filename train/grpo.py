"""GRPO recipe: read a YAML run config, go on training its SFT adapter with GRPO, write the adapter folder.

    python train/grpo.py --config configs/grpo/tiny-omni-zero2.yaml
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml train/grpo.py --config configs/grpo/<run>.yaml

Same as `apallm train grpo --config ...`; every piece lives in apallm.training.grpo.
"""

import argparse

from apallm.training.grpo import GRPOConfig, train_grpo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--output-dir", default=None)
    ap.add_argument("--adapter", default=None, help="the SFT adapter folder to start from")
    ap.add_argument("--resume", nargs="?", const=True, default=None)
    args = ap.parse_args()
    overrides = {k: v for k, v in (("output_dir", args.output_dir), ("adapter", args.adapter),
                                   ("resume_from_checkpoint", args.resume)) if v is not None}
    print(f"adapter folder: {train_grpo(GRPOConfig.from_yaml(args.config, overrides))}")


if __name__ == "__main__":
    main()
