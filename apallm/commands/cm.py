"""``apallm cm import-aasist|summary``: the classic countermeasures, the auxiliary detectors beside the audio LLM.
(``apallm train cm`` trains one, ``apallm score`` scores clips with one.)"""

from __future__ import annotations

import json
from pathlib import Path

from apallm.commands._common import EXIT_FAILED, EXIT_OK, fail


def register(sub) -> None:
    """Add the ``cm`` command group to the ``apallm`` subparsers."""
    cm = sub.add_parser("cm", help="classic countermeasures (AASIST, AASIST-L): import, inspect",
                        description="Classic countermeasures, the auxiliary detectors beside the audio LLM.")
    cm_sub = cm.add_subparsers(dest="cm_command", metavar="CM_COMMAND", required=True)

    p = cm_sub.add_parser(
        "import-aasist", help="convert a published AASIST checkpoint (.pth + .conf) into a package checkpoint",
        description="Read a published AASIST / AASIST-L state dict (torch.load with weights_only=True) and its "
                    ".conf, check that they fit, and write model.safetensors, config.json (architecture, "
                    "model_config, provenance with the MIT notice) and LICENSE into DIR.")
    p.add_argument("pth", type=Path, metavar="PTH", help="published state dict, e.g. AASIST.pth")
    p.add_argument("conf", type=Path, metavar="CONF", help="published configuration, e.g. AASIST.conf")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output checkpoint folder")
    p.add_argument("--name", help="checkpoint name (default: aasist or aasist-l, from the configuration)")
    p.set_defaults(func=_cmd_import_aasist)

    p = cm_sub.add_parser(
        "summary", help="print a countermeasure's architecture and trainable-parameter count",
        description="Print the architecture of a named configuration (aasist, aasist-l) or of a checkpoint "
                    "folder; the last line is 'trainable_parameters: N'.")
    p.add_argument("name", metavar="NAME", help="aasist, aasist-l, or a checkpoint folder")
    p.set_defaults(func=_cmd_summary)


def _cmd_import_aasist(args) -> int:
    from apallm.cm.checkpoint import CheckpointError, import_aasist, read_cm_config

    try:
        out = import_aasist(args.pth, args.conf, args.out, name=args.name)
    except CheckpointError as exc:
        return fail("cm import-aasist", exc, EXIT_FAILED)
    config = read_cm_config(out)
    print(f"wrote {out} ({config['name']}: {config['architecture']}, "
          f"{config['trainable_parameters']} trainable parameters)")
    return EXIT_OK


def _cmd_summary(args) -> int:
    from apallm.cm.aasist import count_trainable_parameters
    from apallm.cm.checkpoint import PRESETS, CheckpointError, build_preset, load_cm, read_cm_config

    try:
        if args.name in PRESETS:
            model = build_preset(args.name)
            title = f"{args.name}: {PRESETS[args.name][0]} architecture, published configuration"
        else:
            config = read_cm_config(args.name)
            model, title = load_cm(args.name), f"{config['name']}: {config['architecture']} checkpoint {args.name}"
    except CheckpointError as exc:
        return fail("cm summary", exc)
    print(title)
    print(f"model_config: {json.dumps(model.config.to_dict())}")
    print(f"{'module':<22}{'type':<30}{'parameters':>12}")
    for name, param in model.named_parameters(recurse=False):
        print(f"{name:<22}{'Parameter ' + str(tuple(param.shape)):<30}{param.numel():>12,}")
    for name, child in model.named_children():
        print(f"{name:<22}{type(child).__name__:<30}{count_trainable_parameters(child):>12,}")
    print(f"trainable_parameters: {count_trainable_parameters(model)}")
    return EXIT_OK
