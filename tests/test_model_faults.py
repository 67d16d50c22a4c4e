"""Model folders that loaded into wrong text, crashed, or were misdescribed (engine.model,
engine.registry, engine.whisper): each is now refused with a coded one-line error that names
the file and says what to do, or loaded as what it stands for; and speech Whisper passed over
is transcribed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine import loader
from engine.model import LoadOptions, ModelLoadError, load_model, resolve_model
from engine.registry import UnsupportedModelError, family_for, family_of
from engine.transcribe import TranscribeOptions

FP32 = LoadOptions(precision="fp32", device="cpu")


def _copy(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _refused(source: object, options: LoadOptions = FP32) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as e:
        loader.load_model(source, options)
    assert "\n" not in str(e.value)
    return e.value


# ---- 1: a vocab.json that does not fit the CTC head -----------------------------------------
def _vocab_cases(vocab: dict[str, int]) -> dict[str, tuple[dict[str, int], str]]:
    """Edited vocabularies and the ids the error names for each."""
    n = len(vocab)
    return {
        "cut short": ({t: i for t, i in vocab.items() if i < n // 2}, f"ids {n // 2}–{n - 1} "),
        "an id twice": ({**vocab, "龘": vocab["的"]}, f"ids {vocab['的']} "),
        "a negative id": ({**vocab, "龘": -1}, "ids -1 "),
        "a huge id": ({**vocab, "龘": 10**9}, "ids 1000000000 "),
        "more tokens than outputs": ({**vocab, "x": n, "y": n + 1}, f"ids {n}, {n + 1} "),
    }


@pytest.mark.parametrize(
    "case",
    ["cut short", "an id twice", "a negative id", "a huge id", "more tokens than outputs"],
)
def test_a_vocab_json_that_does_not_fit_the_ctc_head_is_refused(tiny_model_dir, tmp_path, case):
    """They loaded, and each output of the head was written as another character (or none)."""
    folder = _copy(tiny_model_dir, tmp_path / "m")
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    edited, ids = _vocab_cases(vocab)[case]
    (folder / "vocab.json").write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    error = _refused(folder)
    assert error.code == "model.vocab_mismatch"
    assert error.params["tokens"] == len(edited) and error.params["outputs"] == len(vocab)
    assert str(folder / "vocab.json") in str(error) and ids in str(error) + " "
    assert "re-copy vocab.json" in str(error)


def test_an_onnx_folder_with_a_vocab_json_that_does_not_fit_is_refused(tiny_model_dir, tmp_path):
    """The ONNX path reads the vocabulary without transformers; the same check applies."""
    folder = tmp_path / "onnx"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    (folder / "model.onnx").write_bytes(b"\0" * 64)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    edited, _ = _vocab_cases(vocab)["a huge id"]
    (folder / "vocab.json").write_text(json.dumps(edited, ensure_ascii=False), encoding="utf-8")
    assert _refused(folder).code == "model.vocab_mismatch"


def test_a_tokenizer_config_naming_another_tokenizer_is_refused(tiny_model_dir, tmp_path):
    """BertTokenizer ignored vocab.json: the model loaded and wrote nothing."""
    folder = _copy(tiny_model_dir, tmp_path / "m")
    _edit(folder / "tokenizer_config.json", tokenizer_class="BertTokenizer")
    error = _refused(folder)
    assert error.code == "model.tokenizer_mismatch"
    assert str(folder / "tokenizer_config.json") in str(error) and "BertTokenizer" in str(error)


def test_the_project_models_still_load(tiny_model_dir):
    """Their vocabularies fit their heads exactly."""
    from engine.model import DEMO_MODEL_DIR

    for folder in (tiny_model_dir, DEMO_MODEL_DIR):
        m = load_model(folder, FP32)
        assert len(m.vocab) == m.model.config.vocab_size


# ---- 10: config.json's vocab_size against the weights' head ---------------------------------
def test_a_config_whose_vocab_size_differs_from_the_head_names_both_files(tiny_model_dir, tmp_path):
    """It was transformers' "... For details look at the above report!", a report no one saw."""
    folder = _copy(tiny_model_dir, tmp_path / "m")
    outputs = json.loads((folder / "config.json").read_text())["vocab_size"]
    _edit(folder / "config.json", vocab_size=outputs + 10)
    error = _refused(folder)
    assert error.code == "model.head_mismatch"
    said = str(error)
    assert str(folder / "config.json") in said and str(folder / "model.safetensors") in said
    assert str(outputs + 10) in said and str(outputs) in said


# ---- 3: values of the wrong kind in config.json ---------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("num_hidden_layers", "2"), ("conv_stride", [5, 2]), ("vocab_size", "372")],
)
def test_a_config_value_of_the_wrong_kind_is_named(tiny_model_dir, tmp_path, field, value):
    """transformers' strict config classes raised huggingface_hub's StrictDataclass*Error,
    which reached the CLI as a traceback."""
    folder = _copy(tiny_model_dir, tmp_path / "m")
    _edit(folder / "config.json", **{field: value})
    error = _refused(folder)
    assert error.code == "model.bad_config"
    assert str(folder / "config.json") in str(error) and field in str(error)


def test_a_model_type_that_is_not_a_string_is_an_unknown_type(tiny_model_dir, tmp_path):
    """A list as model_type was a TypeError (unhashable), in family_of on the UI thread too."""
    folder = _copy(tiny_model_dir, tmp_path / "m")
    _edit(folder / "config.json", model_type=["wav2vec2"])
    assert family_of(folder) is None
    with pytest.raises(UnsupportedModelError):
        family_for(["wav2vec2"])  # type: ignore[arg-type]
    assert _refused(folder).code == "model.unsupported_in_folder"


# ---- 9: a folder of another kind of model ---------------------------------------------------
def test_a_folder_of_an_unsupported_model_type_says_so_first(tmp_path):
    """A BERT folder was told it missed vocab.json and preprocessor_config.json."""
    folder = tmp_path / "bert-base-chinese"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 6}))
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n的\n")
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    error = _refused(folder)
    assert error.code == "model.unsupported_in_folder"
    assert "'bert'" in str(error) and "missing" not in str(error)


# ---- 5: a LoRA adapter without its base -----------------------------------------------------
def test_a_lora_adapter_folder_is_told_as_an_adapter(tiny_model_dir, tmp_path):
    """It was "missing config.json, model.safetensors ... copy the complete checkpoint"."""
    folder = tmp_path / "adapter"
    shutil.copytree(
        tiny_model_dir,
        folder,
        ignore=shutil.ignore_patterns("config.json", "model.safetensors"),
    )
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    error = _refused(folder)
    assert error.code == "model.adapter_only"
    assert "LoRA adapter" in str(error) and "model/" in str(error)


# ---- a sampling rate no speech model runs at -------------------------------------------------
@pytest.mark.parametrize("rate", [0, "16k", -16000, 1e12, True, 16000.5, None])
@pytest.mark.parametrize("file", ["preprocessor_config.json", "processor_config.json"])
def test_a_sampling_rate_no_speech_model_runs_at_is_named_with_its_file(
    tiny_model_dir, tmp_path, rate, file
):
    """Before: 0 was a ZeroDivisionError traceback, "16k" a ValueError one, -16000 blamed on the
    audio file, 1e12 a std::bad_alloc (the resampler asked for terabytes)."""
    folder = _copy(tiny_model_dir, tmp_path / "model")
    if file == "processor_config.json":  # transformers reads this one first
        record = json.loads((folder / file).read_text(encoding="utf-8"))
        fe = record["feature_extractor"] | {"sampling_rate": rate}
        _edit(folder / file, feature_extractor=fe)
    else:
        _edit(folder / file, sampling_rate=rate)
    error = _refused(folder)
    assert error.code == "model.bad_sampling_rate"
    assert str(folder / file) in str(error) and repr(rate) in str(error) and "16000" in str(error)


def test_a_sampling_rate_is_checked_before_onnx_runtime_reads_the_folder(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "model")
    (folder / "model.onnx").write_bytes(b"\0" * 16)
    _edit(folder / "preprocessor_config.json", sampling_rate=0)
    error = _refused(folder, LoadOptions(precision="fp32", device="cpu", backend="onnx"))
    assert error.code == "model.bad_sampling_rate"


def test_a_whole_sampling_rate_written_as_a_float_loads(tiny_model_dir, tmp_path):
    folder = _copy(tiny_model_dir, tmp_path / "model")
    _edit(folder / "preprocessor_config.json", sampling_rate=8000.0)
    record = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
    fe = record["feature_extractor"] | {"sampling_rate": 8000.0}
    _edit(folder / "processor_config.json", feature_extractor=fe)
    assert load_model(folder, FP32).sampling_rate == 8000


# ---- 6: a tuning job's output folder --------------------------------------------------------
def _job(folder: Path) -> Path:
    """A tuning job's output folder: its settings as config.json; the model is added in model/."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "base", "method": "lora"}))
    return folder


def test_a_tuning_jobs_folder_loads_the_model_it_produced(tiny_model_dir, tmp_path):
    """family_of, export and push took the job for its model/; loading refused it."""
    job = _job(tmp_path / "job")
    shutil.copytree(tiny_model_dir, job / "model")
    assert resolve_model(job) == job / "model"
    m = loader.load_model(job, FP32)
    assert m.path == job / "model" and m.source == str(job) and m.vocab


def _ct2(folder: Path, **files: str | bytes) -> Path:
    """A CTranslate2 Whisper folder as far as the checks before loading go (model.bin's bytes
    are never read: the model class is a fake where it loads)."""
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"\0" * 64)
    defaults = {"config.json": "{}", "tokenizer.json": "{}", "vocabulary.txt": "a"}
    for name, text in {**defaults, **files}.items():
        if isinstance(text, bytes):
            (folder / name).write_bytes(text)
        elif text:
            (folder / name).write_text(text, encoding="utf-8")
    return folder


def _fake_whisper(monkeypatch, model_mels: int = 80, extractor_mels: int = 80) -> None:
    """faster_whisper.WhisperModel as a stand-in that loads anything, with these mel counts."""

    def make(path: str, **kwargs: object) -> SimpleNamespace:
        return SimpleNamespace(
            model=SimpleNamespace(n_mels=model_mels),
            feature_extractor=SimpleNamespace(mel_filters=np.zeros((extractor_mels, 201))),
        )

    monkeypatch.setattr("faster_whisper.WhisperModel", make)


def test_a_whisper_tuning_jobs_folder_loads_the_model_it_produced(tmp_path, monkeypatch):
    from engine.whisper import load_whisper

    _fake_whisper(monkeypatch)
    job = _job(tmp_path / "job")
    _ct2(job / "model")
    assert load_whisper(job).path == job / "model"
    assert loader.load_model(job).path == job / "model"


# ---- 2, 8, 4: Whisper folders missing or with damaged tokenizer / preprocessor files ----------
@pytest.mark.parametrize(
    "tokenizer", ['{"version": "1.0", "model": {"vocab": {"a', b"\xff\xfe\x00not utf-8"]
)
def test_a_whisper_tokenizer_json_cut_short_is_named(tmp_path, tokenizer):
    """tokenizers' bare Exception ("stream did not contain valid UTF-8") escaped as a traceback."""
    folder = _ct2(tmp_path / "w", **{"tokenizer.json": tokenizer})
    error = _refused(folder, LoadOptions())
    assert error.code == "model.bad_json" and str(folder / "tokenizer.json") in str(error)


def test_any_failure_of_the_whisper_model_class_is_a_load_error(tmp_path, monkeypatch):
    def fail(*args: object, **kwargs: object) -> None:
        raise Exception("stream did not contain valid UTF-8")  # what tokenizers raises

    monkeypatch.setattr("faster_whisper.WhisperModel", fail)
    folder = _ct2(tmp_path / "w")
    error = _refused(folder, LoadOptions())
    assert error.code == "model.whisper_load_failed" and "valid UTF-8" in str(error)


def test_a_whisper_folder_without_tokenizer_json_says_it_is_missing(tmp_path):
    """Offline it was faster-whisper's failed Hub lookup: "check your connection"."""
    folder = _ct2(tmp_path / "w", **{"tokenizer.json": ""})
    error = _refused(folder, LoadOptions())
    assert error.code == "model.whisper_incomplete"
    assert error.params["missing"] == "tokenizer.json"


def test_a_whisper_model_whose_mel_count_the_folder_does_not_give_is_refused(tmp_path, monkeypatch):
    """A 128-mel model (large-v3) without preprocessor_config.json loaded with 80 mel bins, and
    then every file failed with CTranslate2's shape error, blamed on the audio."""
    _fake_whisper(monkeypatch, model_mels=128, extractor_mels=80)
    folder = _ct2(tmp_path / "w")
    error = _refused(folder, LoadOptions())
    assert error.code == "model.whisper_incomplete"
    assert error.params["missing"] == "preprocessor_config.json"
    (folder / "preprocessor_config.json").write_text('{"feature_size": 80}')
    error = _refused(folder, LoadOptions())  # there, but for another model
    assert error.code == "model.whisper_load_failed" and "128" in str(error)
    _fake_whisper(monkeypatch, model_mels=128, extractor_mels=128)
    assert loader.load_model(folder).path == folder


# ---- 7: a Hub download cut short, offline ----------------------------------------------------
def _partial_download(cache: Path, repo_id: str, files: dict[str, str]) -> None:
    """The Hugging Face cache after a download stopped: some files there, one .incomplete."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")
    (repo / "blobs").mkdir()
    (repo / "blobs" / ("a" * 64 + ".incomplete")).write_bytes(b"\0" * 1000)


def test_an_interrupted_hub_download_offline_says_to_finish_it(
    tiny_model_dir, tmp_path, monkeypatch
):
    """It named the cache's snapshot folder and said to copy the complete checkpoint."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    files = {
        n: (tiny_model_dir / n).read_text(encoding="utf-8") for n in ("config.json", "vocab.json")
    }
    _partial_download(tmp_path, "someone/partial-model", files)
    error = _refused("someone/partial-model", LoadOptions())
    assert error.code == "model.download_incomplete"
    assert "hf download someone/partial-model" in str(error) and "snapshots" not in str(error)
    _partial_download(tmp_path, "someone/faster-whisper-partial", {"config.json": "{}"})
    error = _refused("someone/faster-whisper-partial", LoadOptions())
    assert error.code == "model.download_incomplete"
    assert "hf download someone/faster-whisper-partial" in str(error)


# ---- 11: speech Whisper passed over ---------------------------------------------------------
# Three utterances (seconds) in 15 s of audio; each sample holds its own position, so that the
# stand-ins below know where a piece they are given lies in the whole.
_SAID = [(1.0, 4.0), (6.0, 9.0), (11.0, 14.0)]


def _positions(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * 16_000), dtype=np.float32)


class _SkippingWhisper:
    """Whisper passing over repeated speech: it reads the first utterance of what it is given,
    ends its window there ("single timestamp ending") and so skips the rest of the window."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def transcribe(self, samples: np.ndarray, **kwargs: object) -> tuple[object, None]:
        from faster_whisper.transcribe import Segment, Word

        start = float(samples[0]) / 16_000
        self.calls.append(start)
        end = start + len(samples) / 16_000
        said = [(a - start, b - start) for a, b in _SAID if a >= start - 0.5 and b <= end + 0.5]
        segments = [
            Segment(
                0, 0, a, b, "欢迎大家来", [], -0.3, 1.0, 0.1, [Word(a, b, "欢迎大家来", 0.9)], 0.0
            )
            for a, b in said[:1]
        ]
        return iter(segments), None


def _speech_in(samples: np.ndarray) -> list[tuple[float, float]]:
    """The stand-in voice detector: the utterances of _SAID within `samples` (seconds into it)."""
    start = float(samples[0]) / 16_000 if len(samples) else 0.0
    end = start + len(samples) / 16_000
    return [(max(a, start) - start, min(b, end) - start) for a, b in _SAID if b > start and a < end]


def test_speech_whisper_passed_over_is_decoded_on_its_own(monkeypatch):
    """One clip said three times came out once: Whisper ended its window after the first, and
    faster-whisper went on after the window. Each utterance is now decoded, in its place."""
    import engine.whisper as whisper

    monkeypatch.setattr(whisper, "_speech", _speech_in)
    fake = _SkippingWhisper()
    loaded = whisper.LoadedWhisper(fake, "fake", Path("fake"), "cpu", "float32")
    options = TranscribeOptions(initial_prompt="")
    got = list(whisper.WhisperTranscriber(loaded).segments(_positions(15.0), options))
    assert [(s.start, s.end) for s in got] == _SAID
    assert [(w.start, w.end) for s in got for w in s.words] == _SAID
    assert fake.calls == [0.0, 5.0, 10.0]  # a second before each, after the last word read


def test_a_gap_without_speech_is_not_decoded_again(monkeypatch):
    """Pauses, and the silence after the last word, cost no second decode."""
    import engine.whisper as whisper

    monkeypatch.setattr(whisper, "_speech", lambda samples: [(0.0, 0.3)])
    fake = _SkippingWhisper()
    loaded = whisper.LoadedWhisper(fake, "fake", Path("fake"), "cpu", "float32")
    got = list(whisper.WhisperTranscriber(loaded).segments(_positions(15.0), TranscribeOptions()))
    assert len(got) == 1 and fake.calls == [0.0]


@pytest.mark.slow
def test_whisper_base_transcribes_a_clip_said_three_times(shared_audio):
    """The real model on one shared clip said three times (1.5 s apart): it wrote the first
    and dropped the other two (12 s of speech)."""
    from engine.audio import load_audio
    from engine.normalize import normalize_text
    from engine.results import Segment
    from engine.whisper import WHISPER_BASE_DIR

    if not (WHISPER_BASE_DIR / "model.bin").is_file():
        pytest.skip(f"{WHISPER_BASE_DIR} is absent: run packaging/fetch-whisper-base.py")
    clip = load_audio(shared_audio / "funasr_asr_example_zh.wav")
    pause = np.zeros(24_000, np.float32)
    audio = np.concatenate([clip, pause, clip, pause, clip])
    transcriber = loader.transcriber_for(loader.load_model(WHISPER_BASE_DIR))
    items, _ = transcriber.transcribe(audio, TranscribeOptions())
    segments = [s for s in items if isinstance(s, Segment)]
    once = len(normalize_text("".join(c.text for c in transcriber.decode(clip))))
    said = len(normalize_text("".join(s.text for s in segments)))
    assert said >= 2.7 * once, [s.text for s in segments]
    third = 2 * (len(clip) + len(pause)) / 16_000
    assert any(c.start >= third for s in segments for c in s.chars)
