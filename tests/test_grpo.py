"""GRPO on the tiny Qwen2.5-Omni thinker: rewards per answer, group advantages, log-probs of sampled answers, a
few steps that move only the adapter, preferred answers gaining probability, the config, and the shipped tiny
config end to end under DeepSpeed ZeRO-2; then an adapter evaluated on a held-out annotated set."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from apallm.allm import default_target, load_allm
from apallm.allm.base import IGNORE_INDEX
from apallm.audio import load_audio
from apallm.commands import main
from apallm.datasets.manifest import read_labelled
from apallm.evaluation import MalformedInputError, UnknownLabelError, evaluate_files
from apallm.evaluation.inputs import read_keys
from apallm.grounding import check_grounding, check_none_statements
from apallm.rationale import CONSISTENT, find_claims, judge_consistency
from apallm.synth import make_toy_set
from apallm.training.grpo import GRPOConfig, GRPODataset, build_grpo_trainer, collate
from apallm.training.rewards import (
    consistency_reward,
    format_reward,
    grounding_reward,
    group_advantages,
    label_reward,
    weighted_rewards,
)
from apallm.training.sft import SFTConfig, build_trainer, save_output
from apallm.verdict import parse_answer

REPO = Path(__file__).resolve().parents[1]
SHORT_PROMPTS = {"system": "You detect deepfake speech.", "instruction": "bonafide or spoof?",
                 "spectrogram": "Spectrogram:"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy shared machine two threads on two cores can run 20x
    slower than one (OpenMP threads wait on each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy(toy_set):
    return toy_set(n=8, seed=0)


@pytest.fixture(scope="module")
def sft_adapter(toy, tmp_path_factory):
    """An SFT adapter folder of the tiny model (one SFT step: a barely trained LoRA + lm_head)."""
    out = tmp_path_factory.mktemp("sft")
    cfg = SFTConfig.from_dict(dict(
        model="tiny-qwen2_5-omni", train_manifest=str(toy), output_dir=str(out), prompts=SHORT_PROMPTS,
        spectrogram={"width": 224, "height": 224},
        peft={"r": 8, "alpha": 16, "dropout": 0.0, "modules_to_save": ["lm_head"]},
        training={"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "save_strategy": "no"}))
    det, trainer = build_trainer(cfg)
    trainer.train()
    save_output(det, trainer, cfg)
    return out


@pytest.fixture(scope="module")
def spoof_sample(toy, sft_adapter):
    det = load_allm(adapter=sft_adapter, device="cpu")
    row = next(r for r in read_labelled(toy) if r["label"] == "spoof")
    return det.make_sample(load_audio(row["path"]))


def grpo_config(toy, adapter, out, **kw):
    data = dict(adapter=str(adapter), train_manifest=str(toy), output_dir=str(out), num_generations=4,
                generation={"max_new_tokens": 8},
                training={"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-2,
                          "save_strategy": "no", "logging_steps": 1})
    for key, value in kw.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return GRPOConfig.from_dict(data)


def lowercase_start(completions, labels, evidence):
    """A reward that prefers answers opening with a lowercase ASCII letter (as both label words do)."""
    return np.array([float(bool(text) and "a" <= text[0] <= "z") for text in completions])


# ------------------------------------------------------------------------------------------------ rewards


def test_rewards_per_sample_on_hand_made_answers(spoof_sample, monkeypatch):
    import apallm.evidence

    # the toy spoof is a band limit, which the data-derived rationale vocabulary does not cite: cite every cue
    monkeypatch.setattr(apallm.evidence, "citable", lambda name: True)
    ev = spoof_sample.evidence
    grounded = default_target("spoof", ev)  # label + cue claims written from the clip's own measurements
    assert "energy stops near 3000 Hz" in grounded  # the band limit at 3 kHz, as measured
    n = len(find_claims(grounded))
    assert n >= 2 and check_grounding(grounded, ev).n_grounded == n
    wrong_label = grounded.replace("spoof", "bonafide", 1)
    contradicted = grounded.replace("energy stops near 3000 Hz", "energy stops near 7500 Hz")
    broken = "spoof, it sounds odd to me"
    no_label = grounded.split("\n", 1)[1]
    answers = [grounded, wrong_label, contradicted, broken, no_label]
    labels = ["spoof"] * 5
    evidence = [ev, ev.to_dict(), ev, ev, ev]  # an Evidence or its dict
    np.testing.assert_array_equal(label_reward(answers, labels, evidence), [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(format_reward(answers, labels, evidence), [1, 1, 1, 0, 0])
    # +1 a grounded claim, -2 a contradicted one, over the claims: one of n claims contradicted -> (n-1-2)/n
    np.testing.assert_allclose(grounding_reward(answers, labels, evidence), [1, 1, (n - 3) / n, 0, 1])
    # the wrong label argues against its own spoof claims (-1); no claim or no label cannot be judged (0)
    np.testing.assert_array_equal(consistency_reward(answers, labels, evidence), [1, -1, 1, 0, 0])
    total, parts = weighted_rewards(answers, labels, evidence, {"label": 1.0, "format": 0.5, "grounding": 0.5})
    np.testing.assert_allclose(total, [2.0, 1.0, 1.5 + 0.5 * (n - 3) / n, 1.0, 0.5])
    assert set(parts) == {"label", "format", "grounding"}
    # the true label decides: the same answer is right for one clip and wrong for another
    np.testing.assert_array_equal(label_reward([grounded, grounded], ["spoof", "bonafide"]), [1, 0])


def test_grounding_reward_pays_a_true_none_and_charges_a_claim_against_the_value(monkeypatch):
    import apallm.evidence
    from apallm.evidence import Evidence, make_cue

    # the case the shipped lite adapter got wrong: a bona fide clip whose one citable cue is just out of range
    monkeypatch.setattr(apallm.evidence, "citable", lambda name: name == "hf_phase_spread")
    lo, hi = apallm.evidence.cue_specs()["hf_phase_spread"]["range"]
    outside = Evidence(clip={}, cues=[make_cue("hf_phase_spread", hi + 0.01), make_cue("dc_offset", 0.0)])
    inside = Evidence(clip={}, cues=[make_cue("hf_phase_spread", (lo + hi) / 2), make_cue("dc_offset", 0.0)])
    says_none = default_target("bonafide", outside)  # nothing supports bona fide: both lines say so
    cites = default_target("bonafide", inside)  # the cue in range is cited, the time line says none
    assert "no frequency-domain cue" in says_none and "no frequency-domain cue" not in cites
    wrong_value = cites.replace(f"{(lo + hi) / 2:.3f}", f"{hi + 0.01:.3f}")
    assert wrong_value != cites
    answers = [says_none, wrong_value, cites, says_none]
    evidence = [outside, outside, inside, inside]
    # true none + true none; a claim of "within" against a measured HIGH (-2) + a true none; a grounded claim +
    # a true none; a false none (the cue supports bona fide here) + a true none
    np.testing.assert_allclose(grounding_reward(answers, ["bonafide"] * 4, evidence), [1, -0.5, 1, -0.5])
    assert check_none_statements(says_none, outside) == (2, 0) and check_none_statements(says_none, inside) == (1, 1)
    # a none line is checked for what it says, whatever the label: "no cue lies outside" holds on the calm clip
    spoof_none = default_target("spoof", inside)
    np.testing.assert_allclose(grounding_reward([spoof_none], ["bonafide"], [inside]), [1])
    assert grounding_reward(["bonafide, sounds fine"], ["bonafide"], [inside])[0] == 0  # nothing to check


def test_reward_inputs_are_checked():
    with pytest.raises(ValueError, match="one entry per completion"):
        label_reward(["spoof"], ["spoof", "bonafide"])
    with pytest.raises(ValueError, match="'bonafide' or 'spoof'"):
        label_reward(["spoof"], ["fake"])
    with pytest.raises(ValueError, match="unknown reward 'fluency'"):
        weighted_rewards(["spoof"], ["spoof"], [None], {"fluency": 1.0})
    with pytest.raises(ValueError, match="finite number"):
        weighted_rewards(["spoof"], ["spoof"], [None], {"label": float("nan")})
    with pytest.raises(ValueError, match="one finite value per completion"):
        weighted_rewards(["a", "b"], ["spoof"] * 2, [None] * 2, {"bad": 1.0}, {"bad": lambda c, la, e: [1.0]})
    total, _ = weighted_rewards(["spoof", "x"], ["spoof"] * 2, [None] * 2, {"tests.test_grpo:lowercase_start": 2.0})
    np.testing.assert_array_equal(total, [2.0, 2.0])


def test_group_advantages_are_normalised_per_clip():
    rewards = np.array([0.0, 1.0, 2.0, 3.0,   # a spread group
                        5.0, 5.0, 5.0, 5.0,   # all equal: nothing to prefer
                        1.0, 0.0, 0.0, 0.0])
    adv = group_advantages(rewards, 4).reshape(3, 4)
    np.testing.assert_allclose(adv.mean(1), 0, atol=1e-12)
    assert adv[0].std() == pytest.approx(1.0, abs=1e-3) and adv[2].std() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(adv[1], 0.0)
    assert list(np.argsort(adv[0])) == [0, 1, 2, 3] and adv[2, 0] > 0 > adv[2, 1]
    np.testing.assert_allclose(group_advantages(rewards, 4, scale=False)[:4], [-1.5, -0.5, 0.5, 1.5])
    np.testing.assert_allclose(group_advantages([0.0, 1.0], 2), [-1, 1], atol=1e-3)  # groups are consecutive
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(rewards[:10], 4)


# ------------------------------------------------------------------------------------------------ config


def test_shipped_configs_load_and_bad_configs_get_clear_errors(toy, sft_adapter, tmp_path):
    tiny = GRPOConfig.from_yaml(REPO / "configs/grpo/tiny-omni-zero2.yaml")
    assert tiny.adapter == SFTConfig.from_yaml(REPO / "configs/sft/tiny-omni-zero2.yaml").output_dir
    assert json.loads(Path(tiny.deepspeed).read_text())["zero_optimization"]["stage"] == 2
    assert tiny.rewards == {"label": 1.0, "format": 0.5, "grounding": 0.5} and tiny.num_generations == 4
    big = GRPOConfig.from_yaml(REPO / "configs/grpo/qwen2.5-omni-3b.yaml")
    assert big.adapter == SFTConfig.from_yaml(REPO / "configs/sft/qwen2.5-omni-3b-lora.yaml").output_dir
    assert big.beta > 0 and big.generation.max_new_tokens == 160

    base = dict(adapter=str(sft_adapter), train_manifest=str(toy), output_dir=str(tmp_path))
    for extra, needle in [({"lr": 1}, "lr: unknown GRPO config key"),
                          ({"num_generations": 1}, "num_generations: must be an integer >= 2"),
                          ({"rewards": {"fluency": 1.0}}, "rewards.fluency: unknown reward 'fluency'"),
                          ({"rewards": {"label": "high"}}, "rewards.label: expected a number"),
                          ({"rewards": {}}, "at least one reward"),
                          ({"beta": -0.1}, "beta"),
                          ({"generation": {"temperature": 0}}, "generation.temperature"),
                          ({"generation": {"top_p": 1.5}}, "generation.top_p"),
                          ({"generation": {"beams": 2}}, "generation.beams: unknown GRPO config key"),
                          ({"window_policy": "last"}, "window_policy: 'last' is not one of")]:
        with pytest.raises(ValueError, match=needle):
            GRPOConfig.from_dict({**base, **extra})
    with pytest.raises(ValueError, match="adapter: missing"):
        GRPOConfig.from_dict({"train_manifest": str(toy), "output_dir": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="train it first with 'apallm train sft"):
        build_grpo_trainer(GRPOConfig.from_dict({**base, "adapter": str(tmp_path / "none")}))
    with pytest.raises(ValueError, match="not ZeRO-3"):
        build_grpo_trainer(GRPOConfig.from_dict({**base, "deepspeed": str(REPO / "configs/deepspeed/zero3.json")}))


# ------------------------------------------------------------------------------------------------ objective


def test_answer_logprobs_match_the_sft_loss_path(toy, sft_adapter, tmp_path, spoof_sample):
    """The log-prob of each answer token equals what the SFT collator's labels select from a plain forward:
    prompt and answer are joined right and only the answer positions reach the output layer."""
    _, trainer = build_grpo_trainer(grpo_config(toy, sft_adapter, tmp_path / "o"))
    det = trainer.detector
    answers = ["spoof\nFrequency: x\nTime: y", "bonafide"]
    rollout = trainer.rollout_from_texts([spoof_sample, spoof_sample], answers)
    assert rollout.completion_mask.sum(1).tolist() == [len(a) + 1 for a in answers]  # bytes + end of turn
    assert rollout.texts == answers
    with torch.no_grad():
        logp = trainer.token_logprobs(trainer.model, rollout)
        batch = det.training_batch([spoof_sample, spoof_sample], answers)
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    for row, answer in enumerate(answers):
        labels = batch["labels"][row]
        positions = (labels != IGNORE_INDEX).nonzero().flatten()[: len(answer) + 1]  # answer + <|im_end|>
        reference = torch.log_softmax(logits[row, positions - 1].float(), -1).gather(
            -1, labels[positions].unsqueeze(-1)).squeeze(-1)
        n = int(rollout.completion_mask[row].sum())
        torch.testing.assert_close(logp[row, :n], reference, atol=1e-5, rtol=1e-5)


def test_sampling_ends_answers_at_end_of_turn_and_never_samples_placeholders(toy, sft_adapter, tmp_path):
    _, trainer = build_grpo_trainer(grpo_config(toy, sft_adapter, tmp_path / "o", generation={"max_new_tokens": 48}))
    tok = trainer.detector.tokenizer
    suppressed = set(trainer._suppressed())
    assert {tok.audio_token_id, tok.image_token_id, tok.convert_tokens_to_ids("<|im_start|>")} <= suppressed
    assert tok.eos_token_id not in suppressed
    ds = GRPODataset(read_labelled(toy), trainer.detector)
    samples = [ds[i][0] for i in range(4)]
    torch.manual_seed(0)
    rollout = trainer.sample(trainer.model, samples, num_generations=4)
    ids, mask = rollout.completion_ids, rollout.completion_mask
    assert ids.shape[0] == 16 and [s.source_id for s in rollout.samples[:5]] == [samples[0].source_id] * 4 + [
        samples[1].source_id]
    assert not torch.isin(ids[mask.bool()], torch.tensor(sorted(suppressed))).any()
    ended = 0
    for row in range(16):
        n = int(mask[row].sum())
        assert mask[row, :n].all() and not mask[row, n:].any()
        if n < ids.shape[1] or ids[row, -1] == tok.eos_token_id:
            assert ids[row, n - 1] == tok.eos_token_id and (ids[row, :n - 1] != tok.eos_token_id).all()
            ended += 1
        assert bool(rollout.truncated[row]) == (tok.eos_token_id not in ids[row].tolist())
        assert rollout.texts[row] == tok.decode(ids[row, :n], skip_special_tokens=True)
    assert ended, "no sampled answer ended within 48 tokens"


@pytest.mark.slow
def test_a_few_steps_change_only_trainable_weights_and_save_an_adapter_folder(toy, sft_adapter, tmp_path):
    cfg = grpo_config(toy, sft_adapter, tmp_path / "out", rewards={"tests.test_grpo:lowercase_start": 1.0},
                      beta=0.1)
    det, trainer = build_grpo_trainer(cfg)
    before = {n: p.detach().clone() for n, p in det.model.named_parameters()}
    trainable = {n for n, p in det.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "modules_to_save" in n for n in trainable)
    trainer.train()
    params = dict(det.model.named_parameters())
    changed = {n for n, p in params.items() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= trainable, f"frozen weights changed: {sorted(changed - trainable)[:5]}"
    assert any("lora_B" in n for n in changed) and any("lm_head" in n for n in changed)
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logs) == 2 and all(0 <= e["rewards/tests.test_grpo:lowercase_start"] <= 1 for e in logs)
    assert all(e["kl"] >= 0 for e in logs) and logs[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # starts at the ref
    # the reference weights were only borrowed: the trainable tensors are the trained ones, not the SFT ones
    assert not torch.equal(params[next(n for n in changed if "lora_B" in n)].detach(),
                           trainer._reference[next(n for n in changed if "lora_B" in n)])

    from apallm.training.grpo import train_grpo  # the whole recipe writes an adapter folder like SFT's

    out = train_grpo(grpo_config(toy, sft_adapter, tmp_path / "run", training={"max_steps": 1}))
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "processor").is_dir()
    assert not (out / "adapter" / "training_args.bin").exists()
    saved = json.loads((out / "apallm.json").read_text())
    assert saved["grpo_config"]["adapter"] == str(sft_adapter) and saved["prompts"] == SHORT_PROMPTS
    (verdict,) = load_allm(adapter=out, device="cpu", max_new_tokens=8).explain([load_audio(read_labelled(toy)[0]
                                                                                            ["path"])])
    assert verdict.label in ("bonafide", "spoof")


@pytest.mark.slow
def test_qwen2_audio_trains_its_adapter_and_spectrogram_projector(toy, tmp_path):
    """The other family: its spectrogram pixels are a forward argument beside the processor's inputs (the
    sampling pass's inputs serve the scoring pass too); the projector trains with the adapter."""
    sft = tmp_path / "sft"
    cfg = SFTConfig.from_dict(dict(
        model="tiny-qwen2-audio", train_manifest=str(toy), output_dir=str(sft), prompts=SHORT_PROMPTS,
        spectrogram={"width": 224, "height": 224}, peft={"r": 4, "alpha": 8, "dropout": 0.0},
        training={"max_steps": 1, "per_device_train_batch_size": 2, "save_strategy": "no"}))
    det, trainer = build_trainer(cfg)
    trainer.train()
    save_output(det, trainer, cfg)
    det, trainer = build_grpo_trainer(grpo_config(toy, sft, tmp_path / "grpo", num_generations=8,
                                                  rewards={"tests.test_grpo:lowercase_start": 1.0},
                                                  training={"max_steps": 2}))
    before = {n: p.detach().clone() for n, p in det.model.named_parameters()}
    trainable = {n for n, p in det.model.named_parameters() if p.requires_grad}
    trainer.train()
    changed = {n for n, p in det.model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed and changed <= trainable
    assert any("projector" in n for n in changed) and any("lora_B" in n for n in changed)


def test_the_answer_the_reward_prefers_gains_probability(toy, sft_adapter, tmp_path, spoof_sample):
    """Two fixed answers to a spoof clip: the real rewards prefer the grounded spoof answer over the same
    rationale labelled bonafide; a few GRPO updates raise its log-probability, above all against the other's."""
    _, trainer = build_grpo_trainer(grpo_config(toy, sft_adapter, tmp_path / "o"))
    model = trainer.model
    good = default_target("spoof", spoof_sample.evidence)
    bad = good.replace("spoof", "bonafide", 1)
    rollout = trainer.rollout_from_texts([spoof_sample, spoof_sample], [good, bad])
    total, _ = trainer.rewards(rollout, ["spoof", "spoof"])
    assert total[0] > total[1]
    advantages = group_advantages(total, 2)

    def answer_logprobs():
        with torch.no_grad():
            return (trainer.token_logprobs(model, rollout) * rollout.completion_mask).sum(1)

    start, p_spoof = answer_logprobs(), trainer.detector.score_samples([spoof_sample])[0]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(5):
        optimizer.zero_grad()
        loss, _ = trainer.policy_loss(model, rollout, advantages)
        loss.backward()
        optimizer.step()
    end = answer_logprobs()
    assert end[0] > start[0] + 1.0, (start, end)  # the preferred answer: e-fold more likely at least
    assert (end[0] - end[1]) > (start[0] - start[1]) + 2.0  # and more likely than the other one
    # the answers differ in their label word only: the label token of the preferred answer gained
    assert trainer.detector.score_samples([spoof_sample])[0] > p_spoof + 0.2


@pytest.mark.slow
def test_sampled_answers_move_towards_what_the_reward_prefers(toy, sft_adapter, tmp_path):
    """Through the Trainer, sampling and all: rewarding answers that open with a lowercase letter raises the
    probability mass of those first tokens."""
    cfg = grpo_config(toy, sft_adapter, tmp_path / "o", num_generations=8, generation={"max_new_tokens": 1},
                      rewards={"tests.test_grpo:lowercase_start": 1.0},
                      training={"max_steps": 6, "learning_rate": 5e-2, "per_device_train_batch_size": 2})
    det, trainer = build_grpo_trainer(cfg)
    tok = det.tokenizer
    letters = torch.tensor([tok.convert_tokens_to_ids(c) for c in "abcdefghijklmnopqrstuvwxyz"])
    samples = [collate([item])["samples"][0] for item in GRPODataset(read_labelled(toy), det)]

    def preferred_mass():
        det.model.eval()
        with torch.no_grad():
            logits = det.model(**det.encode(samples)).logits[:, -1].float()
        return float(torch.softmax(logits, -1)[:, letters].sum(-1).mean())

    start = preferred_mass()
    trainer.train()
    end = preferred_mass()
    logs = [e for e in trainer.state.log_history if "reward" in e]
    assert end > 1.5 * start and end > start + 0.05, (start, end)
    assert np.mean([e["reward"] for e in logs[3:]]) > np.mean([e["reward"] for e in logs[:3]])


# ------------------------------------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_cli_runs_the_shipped_tiny_config_under_deepspeed_zero2(toy, sft_adapter, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed comes with apallm[train]")
    out = tmp_path / "grpo"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "apallm", "train", "grpo", "--config", str(REPO / "configs/grpo/tiny-omni-zero2.yaml"),
           "--adapter", str(sft_adapter), "--output-dir", str(out), "--set", f"train_manifest={toy}",
           "--set", "training.max_steps=2", "--set", "training.per_device_train_batch_size=2",
           "--set", "generation.max_new_tokens=8", "--set", "rewards={tests.test_grpo:lowercase_start: 1.0}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"adapter folder: {out}" in proc.stdout
    assert "'rewards/tests.test_grpo:lowercase_start'" in proc.stdout + proc.stderr  # logged by the trainer
    from safetensors.torch import load_file

    sft = load_file(str(sft_adapter / "adapter" / "adapter_model.safetensors"))
    grpo = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert sft.keys() == grpo.keys() and any(not torch.equal(sft[k], grpo[k]) for k in sft)
    base = "base/model.safetensors"
    assert (out / base).read_bytes() == (sft_adapter / base).read_bytes()  # the tiny base travels along
    saved = json.loads((out / "apallm.json").read_text())
    assert saved["grpo_config"]["deepspeed"].endswith("zero2.json")
    proc = subprocess.run([sys.executable, "-m", "apallm", "explain", "--adapter", str(out), "--json",
                           "--max-new-tokens", "8", read_labelled(toy)[1]["path"]], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["label"] in ("bonafide", "spoof")


def test_cli_reports_a_missing_sft_adapter(tmp_path, capsys):
    code = main(["train", "grpo", "--config", str(REPO / "configs/grpo/tiny-omni-zero2.yaml"),
                 "--adapter", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "o"),
                 "--set", f"train_manifest={tmp_path / 'toy' / 'manifest.jsonl'}"])
    assert code == 2
    assert "train it first with 'apallm train sft" in capsys.readouterr().err
    assert main(["train", "grpo", "--config", str(REPO / "configs/grpo/tiny-omni-zero2.yaml"),
                 "--set", "num_generations=1"]) == 2
    assert "num_generations: must be an integer >= 2" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ held-out evaluation
# An adapter on a held-out annotated set in two commands: apallm batch --evidence writes the predictions, apallm
# eval --keys <manifest> puts label metrics, format validity, grounded precision, contradiction rate and
# label-rationale consistency in one report with the detection metrics.


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    """A held-out set (clips the adapter never saw), annotated with grounded targets by apallm annotate."""
    folder = tmp_path_factory.mktemp("heldout")
    manifest = make_toy_set(folder, n=6, seed=7, targets=False)
    out = folder / "heldout.jsonl"
    import apallm.evidence

    with pytest.MonkeyPatch.context() as mp:  # the toy band limit is cited, though not in the data's vocabulary
        mp.setattr(apallm.evidence, "citable", lambda name: True)
        assert main(["annotate", str(manifest), "-o", str(out)]) == 0
    return out


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_manifest_keys(heldout, tmp_path):
    keys = read_keys(heldout)
    records = rows(heldout)
    assert keys.labels == {r["id"]: r["label"] for r in records}
    assert keys.attack_column == "attack"
    assert {keys.attacks[r["id"]] for r in records if r["label"] == "spoof"} == {"lowpass"}
    assert keys.columns["dataset"] == {r["id"]: "toy" for r in records}  # a --group-by column
    assert "target" not in keys.columns and "path" not in keys.columns
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "label": "spoof"}\n{"id": "b", "label": "maybe"}\n')
    with pytest.raises(UnknownLabelError, match="line 2"):
        read_keys(bad)
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(MalformedInputError, match="no 'label'"):
        read_keys(bad)


def test_adapter_on_a_heldout_set_in_two_commands(heldout, sft_adapter, tmp_path, capsys):
    preds, report = tmp_path / "preds.jsonl", tmp_path / "report"
    assert main(["batch", str(heldout), "--adapter", str(sft_adapter), "--evidence", "-o", str(preds),
                 "--no-progress", "--batch-size", "3"]) == 0
    assert main(["eval", "--predictions", str(preds), "--keys", str(heldout), "--out", str(report),
                 "--n-boot", "50"]) == 0
    out = capsys.readouterr().out
    assert "EER" in out and "rationale format valid" in out
    result = json.loads((report / "metrics.json").read_text())
    records = rows(preds)
    answers = [r["evidence"]["answer"]["text"] for r in records]  # the model's raw answers
    block = result["predictions"]
    assert block["n_scored"] == 6 and result["n_bonafide"] == 3 and result["n_spoof"] == 3
    assert result["eer"] is not None and result["per_attack"][0]["attack"] == "lowpass"
    # format validity is judged on the raw answers, not on the rationale fields the verdict filled in
    assert block["rationale"]["n_valid"] == sum(parse_answer(a).status == "full" for a in answers)
    assert block["n_labels_from_score"] == sum(parse_answer(a).label is None for a in answers)
    truth = {r["id"]: r["label"] for r in rows(heldout)}
    assert block["accuracy"] == pytest.approx(np.mean([r["label"] == truth[r["id"]] for r in records]))
    assert block["grounding"]["n_with_evidence"] == 6  # every record carries its measured cues
    summary = (report / "summary.md").read_text()
    for needle in ("EER (%)", "accuracy", "rationale format valid", "label-rationale consistent",
                   "### Grounding", "grounded precision", "contradiction rate"):
        assert needle in summary


def test_grounded_answers_score_as_grounded_and_a_changed_number_as_contradicted(heldout, sft_adapter, tmp_path):
    """The annotated targets as answers: valid, consistent, all claims grounded; one cited number changed in
    one answer gives that answer one contradicted claim."""
    preds = tmp_path / "preds.jsonl"
    assert main(["batch", str(heldout), "--adapter", str(sft_adapter), "--evidence", "-o", str(preds),
                 "--no-progress"]) == 0
    truth = {r["id"]: r for r in rows(heldout)}
    records = rows(preds)
    for i, record in enumerate(records):  # the model's answers replaced by the annotated targets
        target = truth[record["id"]]["target"]
        if i == 0:
            claim = find_claims(target)[0]
            value = claim.fields["v"]
            changed = claim.text.replace(value, str(float(value.replace(",", "")) + 100), 1)
            target = target.replace(claim.text, changed, 1)
        record["evidence"]["answer"]["text"] = target
        record["label"] = truth[record["id"]]["label"]
    preds.write_text("".join(json.dumps(r) + "\n" for r in records))
    _, result = evaluate_files(keys=heldout, predictions=preds, n_boot=0)
    block = result["predictions"]
    assert block["accuracy"] == 1.0 and block["rationale"]["valid_rate"] == 1.0
    assert block["consistency"]["rate"] == 1.0 and block["consistency"]["consistent"] == 6
    ground = block["grounding"]
    first = check_grounding(records[0]["evidence"]["answer"]["text"], records[0]["evidence"])
    assert first.n_contradicted == 1
    assert ground["n_with_claims"] == 6 and ground["n_contradicted"] == 1
    assert ground["grounded_precision"] == pytest.approx((5 + first.precision) / 6)
    assert ground["contradiction_rate"] == pytest.approx(1 / first.n_claims / 6)
    assert all(judge_consistency(truth[r["id"]]["label"], find_claims(r["evidence"]["answer"]["text"]))
               == CONSISTENT for r in records)
