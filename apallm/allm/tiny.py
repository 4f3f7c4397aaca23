"""Tiny random ALLMs built offline from the real architectures' configs (sizes as in transformers' own
tests), with tokenizers and processors made without any download: a byte-level vocabulary (every byte is a
token, no merges), the family's special tokens and a chat template in the family's format.

They exist for tests and CPU smoke runs; they learn simple audio classes in seconds but know no language.
"""

from __future__ import annotations

import torch

OMNI_SPECIALS = {
    "audio_token": "<|AUDIO|>", "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
    "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
}

# the Qwen chat format (<|im_start|>role\n...<|im_end|>\n), with Omni's audio and image placeholders
OMNI_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_tokenizer(special_tokens: dict[str, str], extra: tuple[str, ...] = ()):
    """A Qwen2 tokenizer over raw bytes: 256 byte tokens, then the special tokens."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode()[b] for b in range(256))}
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", *special_tokens.values(), *extra):
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               extra_special_tokens=dict(special_tokens))
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>", *extra], special_tokens=True)  # already in the vocab
    return tokenizer


def tiny_omni_processor(image_max_pixels: int = 224 * 224):
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = byte_level_tokenizer(OMNI_SPECIALS)
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=image_max_pixels),
        video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=WhisperFeatureExtractor(feature_size=32, sampling_rate=16000),
        tokenizer=tokenizer,
        chat_template=OMNI_CHAT_TEMPLATE,
    )


def tiny_omni_config(tokenizer):
    from transformers import Qwen2_5OmniThinkerConfig

    ids = tokenizer.convert_tokens_to_ids
    return Qwen2_5OmniThinkerConfig(
        audio_config={"d_model": 32, "encoder_attention_heads": 4, "encoder_ffn_dim": 32, "encoder_layers": 2,
                      "num_mel_bins": 32, "max_source_positions": 1500, "n_window": 100, "output_dim": 32},
        vision_config={"depth": 2, "embed_dim": 32, "hidden_size": 32, "hidden_act": "quick_gelu",
                       "intermediate_size": 64, "num_heads": 4, "patch_size": 14, "spatial_merge_size": 2,
                       "temporal_patch_size": 2, "out_hidden_size": 32, "fullatt_block_indexes": [1],
                       "window_size": 112},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                     "max_position_embeddings": 4096, "tie_word_embeddings": False},
        audio_token_index=ids("<|AUDIO|>"), image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"), vision_end_token_id=ids("<|vision_eos|>"),
        user_token_id=ids("<|im_start|>"),
    )


def build_tiny_omni(seed: int = 0):
    """(model, processor): a Qwen2.5-Omni thinker of about 130k parameters, initialised from ``seed``."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    processor = tiny_omni_processor()
    config = tiny_omni_config(processor.tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return model.eval(), processor


QWEN2_AUDIO_SPECIALS = {"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>",
                        "audio_eos_token": "<|audio_eos|>"}

# Qwen2-Audio-Instruct's chat format: "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>" per audio part
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2_audio_processor():
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    from .qwen2_audio import SPEC_TOKEN

    tokenizer = byte_level_tokenizer(QWEN2_AUDIO_SPECIALS, extra=(SPEC_TOKEN,))
    return Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=32, sampling_rate=16000),
                               tokenizer=tokenizer, chat_template=QWEN2_AUDIO_CHAT_TEMPLATE)


def build_tiny_qwen2_audio(seed: int = 0):
    """(model, processor): a Qwen2-Audio of about 100k parameters (the spectrogram projector is added by
    the detector), initialised from ``seed``."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    processor = tiny_qwen2_audio_processor()
    tok = processor.tokenizer
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "d_model": 32, "encoder_attention_heads": 4,
                      "encoder_ffn_dim": 32, "encoder_layers": 2, "num_mel_bins": 32, "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 4096, "tie_word_embeddings": False},
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), processor


# ChatML with plain-string contents, the format of SmolLM2-Instruct and Qwen2.5-Instruct
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_composite(seed: int = 0):
    """(model, tokenizer): a composite of a tiny random Whisper encoder (80 mel bands, 2 layers of width 32)
    and a tiny random Llama (2 layers of width 32) with a byte-level ChatML tokenizer, about 200k parameters
    with the projectors; the encoder and the LM initialised from ``seed``."""
    from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from apallm.frontends.whisper import WhisperFrontEnd

    from .composite import CompositeConfig, CompositeModel

    tokenizer = byte_level_tokenizer({})
    tokenizer.chat_template = CHATML_TEMPLATE
    # init_std 0.2, not transformers' 0.02: the random convolutions' output must not drown under the sinusoidal
    # position embeddings, so that the encoder's states vary with the audio as a trained encoder's do
    whisper = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                            decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64, num_mel_bins=80,
                            max_source_positions=1500, init_std=0.2)
    lm = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                     tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = WhisperFrontEnd(WhisperEncoder(whisper), name="tiny-whisper")
        language_model = LlamaForCausalLM(lm)
    language_model.generation_config.pad_token_id = tokenizer.pad_token_id
    language_model.generation_config.eos_token_id = tokenizer.eos_token_id
    config = CompositeConfig(audio_encoder="audio_encoder", lm="lm", downsample=4, image_grid=(4, 4))
    return CompositeModel(config, encoder, language_model).eval(), tokenizer
