"""The answer-only training loss: the model's own loss and gradients, with logits only for the answer's positions,
in every family and through the Trainer."""

import pytest
import torch
from transformers import Trainer

from apallm import load_audio
from apallm.allm import default_target, load_allm
from apallm.allm.base import IGNORE_INDEX
from apallm.datasets.manifest import read_labelled
from apallm.training.answer_loss import AnswerLossTrainer, answer_loss, answer_width
from apallm.training.sft import PeftSettings, SFTCollator, SFTConfig, SFTDataset, apply_peft, build_trainer

PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?", "spectrogram": "Spectrogram:"}


@pytest.fixture(scope="module")
def toy(toy_set):
    return toy_set(n=6, seed=3)


def test_answer_width_spans_every_row_and_never_the_first_column():
    labels = torch.full((2, 8), IGNORE_INDEX)
    labels[0, 6:] = 5
    labels[1, 4:] = 7
    assert answer_width(labels) == 4
    labels[1, 0] = 3
    assert answer_width(labels) == 7  # a label in column 0 predicts nothing
    with pytest.raises(ValueError, match="no token"):
        answer_width(torch.full((2, 4), IGNORE_INDEX))


@pytest.mark.parametrize("model", ["tiny-composite", "tiny-qwen2-audio", "tiny-qwen2_5-omni"])
def test_loss_and_gradients_equal_the_models_own_with_logits_only_for_the_answer(toy, model):
    torch.manual_seed(0)
    det = load_allm(model, device="cpu", prompts=PROMPTS)
    det.model = apply_peft(det.model, det.family, PeftSettings(r=4, alpha=8, dropout=0.0))
    det.model.train()
    rows = read_labelled(toy)[:3]
    samples = [det.make_sample(load_audio(r["path"])) for r in rows]
    # a label-only answer beside full rationales: rows' answers differ in length
    answers = ["spoof", default_target("bonafide", samples[1].evidence), default_target("spoof", samples[2].evidence)]
    batch = dict(det.training_batch(samples, answers))
    params = [p for p in det.model.parameters() if p.requires_grad]

    own = det.model(**batch).loss
    own_grads = torch.autograd.grad(own, params)
    inputs = dict(batch)
    labels = inputs.pop("labels")
    loss, outputs = answer_loss(det.model, inputs, labels)
    grads = torch.autograd.grad(loss, params)

    width = answer_width(labels)
    assert outputs.logits.shape[1] == width < batch["input_ids"].shape[1]
    torch.testing.assert_close(loss, own, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, own_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # the hook is gone afterwards: a plain forward projects every position again
    assert det.model(**inputs).logits.shape[1] == batch["input_ids"].shape[1]


def test_trainer_loss_equals_the_plain_trainers_with_and_without_an_item_count(toy, tmp_path):
    cfg = SFTConfig.from_dict(dict(model="tiny-composite", train_manifest=str(toy), output_dir=str(tmp_path),
                                   prompts=PROMPTS, peft={"r": 4, "alpha": 8, "dropout": 0.0},
                                   training={"max_steps": 1, "per_device_train_batch_size": 2,
                                             "save_strategy": "no"}))
    det, trainer = build_trainer(cfg)
    assert isinstance(trainer, AnswerLossTrainer)
    ds = SFTDataset(read_labelled(toy), det)
    batch = SFTCollator(det)([ds[0], ds[1], ds[2]])
    for items in (None, torch.tensor(40)):
        ours = trainer.compute_loss(trainer.model, dict(batch), num_items_in_batch=items)
        plain = Trainer.compute_loss(trainer, trainer.model, dict(batch), num_items_in_batch=items)
        torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)
    trainer.train()  # and a step runs through it
    assert trainer.state.global_step == 1
