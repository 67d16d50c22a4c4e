"""Language-model decoding measured: CER greedy vs beam search, decode time per second of audio,
and what domain text and hotwords do on synthesized medicine speech.

1. Demo model, the 200 held-out general sentences: CER greedy and with the model folder's
   4-gram (resources/demo-model/lm/, built from its training text only), and the decode time
   per second of audio of each (the model forward, shared by both, timed apart).
2. Medicine, two test sets: `heldout.txt` (40 template sentences from the same templates and
   word lists as `train.txt`) and `independent-test.txt` (40 sentences written by hand, no
   template; half their characters were outside the stage-6 model's 345, 1 % are outside
   stage 8's 3,363, and the bench prints the share). Domain text:
   `train.txt` + `train-natural.txt` (280 sentences, none of them a test sentence; the shares
   of test 4-grams they contain are printed). Hotwords: the 61 medical terms of
   `resources/corpus/build.py`'s word list at the default weight (BeamOptions.hotword_weight);
   their errors are the occurrences of a term in a reference that the hypothesis lacks (a term
   inside a longer one, 体温 in 量体温, counts as the longer one alone).
   Each set: CER greedy, with the general LM, with it and homophone search (engine.homophones)
   but no domain text, with general + domain text without homophone search and with it (the
   decoder's default with domain text), with hotwords too. The general held-out sentences are
   also decoded with the medicine domain text: what it costs on speech outside the domain.
   A model without lm/ has no general LM: its default decoding is greedy, said as "no LM
   (greedy)", and the cuts are against that.
3. `--tuned`: the same after a LoRA job on the medicine template audio (`train.txt` × 3
   renderings, bench_accuracy's settings): a model that has heard the domain's characters. The
   demo model has not (their output rows were never trained: about −20 log-probability at
   every frame), so on it no language model can write them; the share of errors on such
   characters is printed.

    .venv/bin/python bench/bench_lm.py [--tuned] [--steps 400]

Hypotheses are normalized as the references are (engine.normalize, as `tingxie-cli evaluate`
scores them). Audio is synthesized (seeded) into --work once per sentence file's content and
reused; every option is checked before any audio is made. Last line: the domain-text cut and
the hotword cut on the independent medicine test of the last model measured, and beam vs
greedy decode seconds per second of audio (on a model without lm/: that it has no LM, so no
cut against one).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from bench_accuracy import CORPUS, ROOT, checked_model, lora_job, positive_number, synth_text

MEDICINE = CORPUS / "medicine"
# The everyday sentences the demo model heard: stage 7 voiced the first 30,000 of
# recipe/everyday.py's lines, stage 8 the next 30,000 (the Makefile's EVERYDAY_LINES).
VOICED_EVERYDAY_LINES = 60_000
NO_LM = "no LM (greedy)"  # a model folder without lm/: its default decoding


def everyday_lines() -> list[str]:
    """recipe/everyday.py's training sentences, in its order."""
    sys.path.insert(0, str(ROOT / "resources" / "demo-model" / "recipe"))
    from everyday import training_lines

    return training_lines()


def hotword_file(out: Path) -> Path:
    """The medicine word list of resources/corpus/build.py, one term a line."""
    sys.path.insert(0, str(CORPUS))
    import build

    terms = [t for group in build.MEDICINE.values() for t in group]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(terms) + "\n", encoding="utf-8")
    return out


def domain_file(out: Path) -> Path:
    text = "".join(
        (MEDICINE / f).read_text(encoding="utf-8") for f in ("train.txt", "train-natural.txt")
    )
    out.write_text(text, encoding="utf-8")
    return out


def ngram_share(test: list[str], train: list[str], n: int) -> float:
    seen = {s[i : i + n] for s in train for i in range(len(s) - n + 1)}
    grams = [s[i : i + n] for s in test for i in range(len(s) - n + 1)]
    return sum(g in seen for g in grams) / max(1, len(grams))


def term_errors(refs: list[str], hyps: list[str], terms: list[str]) -> tuple[int, int]:
    """(occurrences of the terms in the references, how many of them the hypotheses lack). Each
    text is read left to right, the longest term at each place: 量体温 is one occurrence, of
    量体温, not one of it and one of 体温 inside it."""
    if not terms:
        return 0, 0
    longest_first = re.compile("|".join(map(re.escape, sorted(terms, key=len, reverse=True))))
    total = missed = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        wanted = Counter(longest_first.findall(ref))
        total += wanted.total()
        missed += (wanted - Counter(longest_first.findall(hyp))).total()
    return total, missed


class Scorer:
    """One model: forward once per utterance, then decode the kept log-probs many ways."""

    def __init__(self, model_dir: Path) -> None:
        from engine.model import LoadOptions, load_model
        from engine.transcribe import Transcriber

        self.t = Transcriber(load_model(model_dir, LoadOptions(device="cpu", precision="fp32")))
        self.cache: dict[Path, tuple[list[str], list, float, float]] = {}

    @property
    def has_lm(self) -> bool:
        """Whether the model folder has a language model (lm/): without one the default
        decoding is greedy."""
        return self.t.model_lm is not None

    def outputs(self, manifest: Path):
        if manifest not in self.cache:
            from engine import audio
            from engine.normalize import normalize_text
            from engine.tune.data import from_manifest

            rows = from_manifest(manifest).examples
            clips = [audio.load_audio(r.audio) for r in rows]
            began = time.process_time()
            lps = [self.t.log_probs([c])[0] for c in clips]
            forward = time.process_time() - began
            seconds = sum(len(c) for c in clips) / 16000
            refs = [normalize_text(r.text) for r in rows]
            self.cache[manifest] = (refs, lps, seconds, forward)
        return self.cache[manifest]

    def decode(
        self, manifest: Path, homophones: bool | None = None, **options
    ) -> tuple[list[str], float]:
        """Hypotheses, normalized as the references (as evaluate normalizes them), and decode
        CPU seconds (the search alone) with TranscribeOptions; `homophones` overrides the
        decoder's homophone search (on with domain text)."""
        from dataclasses import replace

        from engine.normalize import normalize_text
        from engine.transcribe import TranscribeOptions

        _, lps, _, _ = self.outputs(manifest)
        beam = self.t.beam_decoder(TranscribeOptions(**options))
        if beam is not None and homophones is not None:
            beam = replace(beam, homophones=homophones)
        began = time.process_time()
        texts = ["".join(c.text for c in self.t.chars(lp, beam=beam)) for lp in lps]
        seconds = time.process_time() - began
        return [normalize_text(t) for t in texts], seconds


def general(scorer: Scorer, manifest: Path, domain: Path) -> tuple[float | None, float]:
    """CER and decode time on the general held-out sentences; also what the medicine domain
    text (and its homophone search) costs on them. Returns the decode CPU seconds per second of
    audio of the model's LM's beam search (None without lm/: none was run) and of greedy."""
    from engine.metrics import cer

    refs, _, seconds, forward = scorer.outputs(manifest)
    greedy, g_time = scorer.decode(manifest, decoder="greedy")
    beam_rate, with_lm = None, f"the model has {NO_LM}"
    if scorer.has_lm:
        beam, b_time = scorer.decode(manifest)
        beam_rate, with_lm = b_time / seconds, f"with the model's LM {cer(refs, beam).cer:.2%}"
    medicine, m_time = scorer.decode(manifest, domain_text=str(domain))
    print(
        f"general held-out ({len(refs)} sentences, {seconds / 60:.1f} min): CER greedy "
        f"{cer(refs, greedy).cer:.2%}, {with_lm}, with the medicine domain text "
        f"{'too ' if scorer.has_lm else ''}{cer(refs, medicine).cer:.2%}"
    )
    beam_text = f"{beam_rate:.4f}" if beam_rate is not None else "n/a (no LM)"
    print(
        f"decode CPU s per s of audio: greedy {g_time / seconds:.4f}, beam search {beam_text}, "
        f"with the domain text and homophone search {m_time / seconds:.4f} (model forward "
        f"{forward / seconds:.3f})"
    )
    return beam_rate, g_time / seconds


def run_label(run: str, has_lm: bool) -> str:
    """A decoding run's printed name: on a model without lm/ its "general LM" is none (the
    default decoding is greedy; the others search without one)."""
    if has_lm:
        return run
    return NO_LM if run == "general LM" else run.replace("general LM", "no LM")


def medicine(scorer: Scorer, name: str, manifest: Path, domain: Path, hot: Path) -> tuple:
    from engine.lm import read_hotwords
    from engine.metrics import cer

    refs, _, _, _ = scorer.outputs(manifest)
    terms = [h.text for h in read_hotwords(hot)]
    runs = {
        "greedy": dict(decoder="greedy"),
        "general LM": {},
        "general LM + homophones": dict(decoder="beam", homophones=True),
        "+ domain text, no homophones": dict(domain_text=str(domain), homophones=False),
        "+ domain text": dict(domain_text=str(domain)),  # homophone search on, as by default
        "+ domain text + hotwords": dict(domain_text=str(domain), hotwords=str(hot)),
        "general LM + hotwords": dict(hotwords=str(hot)),
    }
    scores = {}
    vocab = set(scorer.t.model.vocab)
    heard = set((CORPUS / "general/train.txt").read_text(encoding="utf-8"))
    heard |= set("".join(everyday_lines()[:VOICED_EVERYDAY_LINES]))
    for label, options in runs.items():
        hyps, _ = scorer.decode(manifest, **options)
        c = cer(refs, hyps).cer
        total, missed = term_errors(refs, hyps, terms)
        scores[label] = (c, missed, total)
        shown = run_label(label, scorer.has_lm)
        print(f"  {name:<18} {shown:<30} CER {c:.2%}   term errors {missed}/{total}")
    chars = "".join(refs)
    outside = sum(ch not in vocab for ch in chars) / len(chars)
    unheard = sum(ch in vocab and ch not in heard for ch in chars) / len(chars)
    print(
        f"  {name}: {outside:.0%} of reference characters outside the vocabulary, {unheard:.0%} "
        f"in it but never in the demo model's training text"
    )
    return scores


def report(scores: dict, has_lm: bool) -> tuple[float, float]:
    """Prints and returns the domain-text cut and the hotword cut of one set's `scores`, each
    against the model's default decoding (its general LM; greedy where it has none)."""
    base, with_domain = scores["general LM"][0], scores["+ domain text"][0]
    cut = 1 - with_domain / base if base else 0.0
    _, missed_before, total = scores["general LM"]
    _, missed_after, _ = scores["general LM + hotwords"]
    hot_cut = 1 - missed_after / missed_before if missed_before else 0.0
    greedy = scores["greedy"][0]
    plain, homophones = (
        scores["+ domain text, no homophones"][0],
        scores["general LM + homophones"][0],
    )
    print(
        f"    domain text (vs {run_label('general LM', has_lm)}): CER {base:.2%} -> "
        f"{with_domain:.2%} ({cut:.0%} relative; from greedy "
        f"{greedy:.2%}: {1 - with_domain / greedy if greedy else 0:.0%}); of which the domain "
        f"LM alone {1 - plain / base if base else 0:.0%}, homophone search alone "
        f"{1 - homophones / base if base else 0:.0%}; hotwords: term errors "
        f"{missed_before} -> {missed_after} of {total} ({hot_cut:.0%})"
    )
    return cut, hot_cut


def last_line(cuts: tuple[float, float], beam: float | None, greedy: float) -> str:
    """The headline: the cuts against the general LM and the decode CPU seconds per second of
    audio; on a model without lm/ (`beam` None: no beam search of its LM ran), that there was
    no LM to measure the cuts against."""
    if beam is None:
        return (
            f"{NO_LM}: the model has no lm/, so no cut against a general LM was measured (the "
            f"cuts above are against greedy decoding); greedy {greedy:.4f} CPU s per s"
        )
    return (
        f"domain-text cut {cuts[0]:.0%} (target >= 25 %), hotword cut {cuts[1]:.0%} "
        f"(target >= 50 %), beam {beam:.3f} vs greedy {greedy:.4f} CPU s per s"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every option checked (args.model resolved to its checked folder)."""
    from engine.cli import positive_int

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "resources" / "demo-model")
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench-lm")
    parser.add_argument("--tuned", action="store_true", help="also measure a LoRA-tuned model")
    parser.add_argument(
        "--steps", type=positive_int, default=400, help="LoRA steps with --tuned (>= 1)"
    )
    parser.add_argument(
        "--lr", type=positive_number, default=2e-3, help="LoRA peak learning rate (> 0)"
    )
    args = parser.parse_args(argv)
    args.model = checked_model(parser, args.model)
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parse_args(argv)
    os.environ.setdefault("TINGXIE_LM_CACHE", str(args.work / "lm-cache"))
    from engine.ngram import split_sentences

    work = args.work
    general_set = synth_text(CORPUS / "general/heldout.txt", work, 1, 11)
    sets = {
        "heldout (template)": synth_text(MEDICINE / "heldout.txt", work, 1, 13),
        "independent-test": synth_text(MEDICINE / "independent-test.txt", work, 1, 43),
    }
    domain = domain_file(work / "medicine-domain.txt")
    hot = hotword_file(work / "medicine-hotwords.txt")
    train = split_sentences(domain.read_text(encoding="utf-8"))
    print(f"domain text: {len(train)} sentences (medicine train.txt + train-natural.txt)")
    for name, test in (
        ("heldout (template)", "heldout.txt"),
        ("independent-test", "independent-test.txt"),
    ):
        sentences = split_sentences((MEDICINE / test).read_text(encoding="utf-8"))
        shares = ", ".join(f"{n}-grams {ngram_share(sentences, train, n):.0%}" for n in (2, 4))
        print(f"  {name}: share of its character {shares} found in the domain text")

    scorer = Scorer(args.model)
    print(f"model {args.model} (CPU, fp32)")
    beam_rate, greedy_rate = general(scorer, general_set, domain)
    cuts = (0.0, 0.0)
    for name, manifest in sets.items():
        cuts = report(medicine(scorer, name, manifest, domain, hot), scorer.has_lm)
    if args.tuned:
        d_train = synth_text(MEDICINE / "train.txt", work, 3, 12)
        tag = f"lora-medicine-{args.steps}-{args.lr:g}"
        began = time.perf_counter()
        tuned = lora_job(args.model, d_train, work / tag, args.steps, args.lr)
        kept = "; it keeps the base's lm/" if scorer.has_lm else ""
        print(
            f"LoRA on medicine train.txt x3 ({args.steps} steps, "
            f"{(time.perf_counter() - began) / 60:.1f} min){kept}"
        )
        scorer = Scorer(tuned)
        for name, manifest in sets.items():
            cuts = report(medicine(scorer, name, manifest, domain, hot), scorer.has_lm)
    print(last_line(cuts, beam_rate, greedy_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
