"""CTC confidence calibration (issue 12, part 3): a model folder's calibration.json maps the
confidence the transcriber shows; `evaluate --calibrate` fits one for a CTC model and reports
the raw and calibrated measures side by side."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from engine.calibration import CALIBRATION_FILE, Calibration
from engine.decode import ConfidenceMethod


@pytest.fixture
def calibrated(tiny_model_dir, tmp_path):
    folder = tmp_path / "tiny-calibrated"
    shutil.copytree(tiny_model_dir, folder)
    Calibration("max_prob:1:mean", a=0.5, b=-1.0, characters=100).write(folder)
    return folder


def _transcriber(folder):
    from engine.model import LoadOptions, load_model
    from engine.transcribe import Transcriber

    return Transcriber(load_model(folder, LoadOptions(device="cpu", precision="fp32")))


def test_the_folders_calibration_maps_every_shown_confidence(calibrated):
    t = _transcriber(calibrated)
    cal = t.calibration()
    assert cal is not None and cal.a == 0.5
    audio = np.random.default_rng(3).normal(scale=0.1, size=16000 * 2).astype(np.float32)
    (lp,) = t.log_probs([audio])
    raw = t.chars(lp, calibrate=False)
    shown = t.chars(lp)
    assert raw and [c.text for c in raw] == [c.text for c in shown]
    for r, s in zip(raw, shown, strict=True):
        assert s.confidence == pytest.approx(cal.apply(r.confidence), abs=1e-4)
        assert s.alternatives == r.alternatives  # only the confidence is mapped
    # another measure is not what the file calibrates: it stays raw
    other = ConfidenceMethod.parse("entropy_gibbs_exp:1:min")
    assert t.calibration(other) is None
    assert t.chars(lp, confidence=other) == t.chars(lp, confidence=other, calibrate=False)
    from engine.results import Segment

    items, _ = t.transcribe(audio)
    chars = [c for s in items if isinstance(s, Segment) for c in s.chars]
    assert [c.confidence for c in chars] == [c.confidence for c in shown]


def test_after_a_beam_search_the_beam_map_gives_the_confidence(tiny_with_lm, tmp_path):
    """A calibration with a beam map: characters of a beam search take its value on the
    search's evidence; greedy decoding of the same log-probs keeps the Platt map."""
    from engine.calibration import BeamCalibration
    from engine.lm import EVIDENCE
    from engine.transcribe import TranscribeOptions

    coef = tuple(1.0 if name == "beam_agreement" else 0.0 for name in EVIDENCE)
    beam_map = BeamCalibration(EVIDENCE, coef, intercept=-0.5, characters=500)
    Calibration("max_prob:1:mean", a=0.5, b=-1.0, characters=500, beam=beam_map).write(tiny_with_lm)
    t = _transcriber(tiny_with_lm)
    audio = np.random.default_rng(3).normal(scale=0.1, size=16000 * 2).astype(np.float32)
    (lp,) = t.log_probs([audio])
    beam = t.beam_decoder()
    assert beam is not None
    shown = t.chars(lp, beam=beam)
    assert shown
    expected = beam_map.apply(beam.evidence(lp, beam.paths(lp)))
    assert [c.confidence for c in shown] == pytest.approx(list(expected), abs=1e-4)
    assert all(0.37 < c.confidence <= 0.63 for c in shown)  # σ(agreement − 0.5)
    raw = t.chars(lp, beam=beam, calibrate=False)
    assert [c.text for c in raw] == [c.text for c in shown]
    greedy = t.chars(lp, calibrate=False)
    assert [c.confidence for c in t.chars(lp)] == pytest.approx(
        [t.calibration().apply(c.confidence) for c in greedy], abs=1e-4
    )
    items, _ = t.transcribe(audio, TranscribeOptions())
    from engine.results import Segment

    chars = [c for s in items if isinstance(s, Segment) for c in s.chars]
    assert [c.confidence for c in chars] == pytest.approx([c.confidence for c in shown], abs=1e-4)


@pytest.mark.parametrize(("model", "calibrated_as"), [("tiny_model_dir", "platt"),
                                                       ("tiny_with_lm", "beam")])  # fmt: skip
def test_evaluate_fits_a_ctc_calibration_and_reports_both(
    model, calibrated_as, request, tmp_path, capsys, monkeypatch
):
    """Without an LM the fit is a Platt map; with one, also a beam map, which the next
    evaluate shows as the calibrated measure. In fp32 on every CPU: evaluate runs bf16 where
    the CPU has it (a Xeon with AMX), and there the beam map fitted to these six rows of noise
    did not beat the raw confidences, so rightly nothing was written."""
    import engine.model

    monkeypatch.setattr(engine.model, "cpu_has_fast_bf16", lambda: False)  # auto: fp32
    from engine.audio import write_wav
    from engine.cli import main

    folder = tmp_path / "tiny"
    shutil.copytree(request.getfixturevalue(model), folder)
    rng = np.random.default_rng(0)
    t = _transcriber(folder)
    rows = []
    for i in range(6):
        audio = rng.normal(scale=0.1, size=16000).astype(np.float32)
        write_wav(tmp_path / f"{i}.wav", audio)
        # two references begin with what the model writes, so some characters are right
        said = "".join(c.text for s in t.transcribe(audio)[0] if hasattr(s, "chars")
                       for c in s.chars)  # fmt: skip
        text = said[: len(said) // 2] + "的一是" if i % 3 == 0 else "的一是不了人"
        rows.append(f"{i}.wav\t{text}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("path\ttext\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code = main(["evaluate", "--model", str(folder), "--data", str(manifest), "--calibrate",
                 "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calibration"]["measure"] == "max_prob:1:mean"
    written = json.loads((folder / CALIBRATION_FILE).read_text(encoding="utf-8"))
    assert written["measure"] == "max_prob:1:mean"
    assert (written["beam"] is not None) == (calibrated_as == "beam")
    assert out["calibration"]["held_out_auroc"] is not None
    code = main(["evaluate", "--model", str(folder), "--data", str(manifest), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    names = [m["measure"] for m in report["measures"]]
    assert names[0] == f"max_prob:1:mean+{calibrated_as}" and "max_prob:1:mean" in names[1:]
    assert report["confidence_measure"] == f"max_prob:1:mean+{calibrated_as}"


@pytest.fixture(scope="module")
def medicine_clips(tmp_path_factory):
    """30 medicine sentences the demo model was never trained on: many wrong characters
    shown with high confidence, the case calibration is for."""
    from engine.model import DEMO_MODEL_DIR
    from engine.tune.data import from_manifest
    from engine.tune.synth import SynthOptions, read_sentences, synthesize

    corpus = DEMO_MODEL_DIR.parent / "corpus"
    folder = tmp_path_factory.mktemp("medicine")
    lines = read_sentences(corpus / "medicine" / "heldout.txt")[:30]
    for _ in synthesize(lines, folder, SynthOptions(seed=5)):
        pass
    return from_manifest(folder / "manifest.tsv").examples


def test_a_tuned_models_calibration_is_refitted_on_its_heldout_rows(medicine_clips, tmp_path):
    """refit_calibration (what a tuning job runs on its held-out rows when it saves the model)
    replaces a stale calibration.json (the demo model ships one) by a fit of this model's raw
    confidences that lowers the cross-fitted ECE; with too few characters it fits nothing and
    leaves the stale file gone."""
    from engine.calibration import read_calibration
    from engine.model import DEMO_MODEL_DIR, LoadOptions
    from engine.tune.evaluate import refit_calibration

    folder = tmp_path / "tuned"
    shutil.copytree(DEMO_MODEL_DIR, folder)
    stale = Calibration("max_prob:1:mean", a=9.0, b=9.0, characters=1)
    stale.write(folder)
    load = LoadOptions(device="cpu", precision="fp32")
    fit = refit_calibration(folder, medicine_clips, load)
    assert fit is not None and fit.calibration.characters >= 200
    print(f"ECE raw {fit.raw_ece:.3f}, cross-fitted {fit.held_out_ece:.3f}")
    assert fit.held_out_ece < fit.raw_ece  # stage 8: 0.106 -> 0.048 (the beam map)
    written = read_calibration(folder, fit.calibration.measure)
    assert written == fit.calibration and written.a != stale.a

    stale.write(folder)
    assert refit_calibration(folder, medicine_clips[:2], load) is None
    assert not (folder / CALIBRATION_FILE).exists()
